#!/usr/bin/perl

# The Host of a check is its server as written, and nginx 1.27.3 takes a
# quoted name holding CR LF for a "resolve" server (resolved at run time by
# nginx's resolver, which asks whatever it is given): the check's request
# would carry the header the name spells, "Host: api.test" and then
# "X-Injected: PORT" once a resolver answers for it.  Refused at
# configuration, as host= with such bytes is; host= given, it is fine.
# (A server resolved at configuration cannot have such a name: the C
# library refuses it before asking.)

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new();

my $conf = <<'EOF';

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    resolver 127.0.0.1:%%PORT_8053%% valid=1s ipv6=off;

    upstream u {
        zone u 64k;
        railgun_check uri=/health interval=200ms timeout=150ms %%HOST%%;
        server "api.test\r\nX-Injected:%%PORT_8091%%" resolve;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location / {
            proxy_pass http://u;
        }
    }
}

EOF

(my $plain = $conf) =~ s/%%HOST%%//;
(my $given = $conf) =~ s/%%HOST%%/host=api.test/;

my ($rc, $out) = $t->nginx_t($plain);
plan(skip_all => 'no "server ... resolve" in this nginx')
	if $rc != 0 && $out =~ /invalid parameter "resolve"/;

$t->plan(3);

ok($rc != 0 && $out =~ /\[emerg\].*railgun: probe "u": the Host of its check/,
	'a resolve server whose name holds CR LF: refused')
	or diag("exit $rc: $out");

unlike($out, qr/X-Injected/, 'the name not logged raw');

($rc, $out) = $t->nginx_t($given);
is($rc, 0, 'with host=: accepted') or diag($out);

###############################################################################
