
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_RAILGUN_LABELS_H_INCLUDED_
#define _NGX_RAILGUN_LABELS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* label values are cut to this many source bytes, at a character boundary */
#define NGX_RAILGUN_LABEL_MAX  256

/* an escaped value takes at most 3 bytes per source byte (U+FFFD) */
#define NGX_RAILGUN_LABEL_ESCAPED_MAX  (3 * NGX_RAILGUN_LABEL_MAX)


u_char *ngx_railgun_label_escape(u_char *dst, u_char *src, size_t len);
size_t ngx_railgun_utf8_cut(u_char *p, size_t len, size_t max);
size_t ngx_railgun_utf8_char_len(u_char *p, size_t n);


#endif /* _NGX_RAILGUN_LABELS_H_INCLUDED_ */
