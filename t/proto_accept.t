#!/usr/bin/perl

# Negotiation of the protobuf exposition against hostile or ambiguous
# Accept headers: the text format or JSON asked for with a higher q than
# protobuf gets what it asked for; q=0 and q=0.0 refuse protobuf; several
# Accept headers count together; a huge header is parsed to its end.

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

my $t = Test::Railgun->new()->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    large_client_header_buffers 4 64k;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }
    }
}

EOF

$t->run()->plan(31);

###############################################################################

my $PB = 'application/vnd.google.protobuf;'
	. 'proto=io.prometheus.client.MetricFamily;encoding=delimited';

sub type_of {
	my (@accept) = @_;

	my ($status, $h) = http_split(http_get('/metrics',
		headers => [ map { "Accept: $_" } @accept ]));

	return ($status // 0) . ' ' . ($h->{'content-type'} // '');
}

my $TEXT = qr!^200 text/plain; version=0\.0\.4!;
my $PROTO = qr!^200 application/vnd\.google\.protobuf; !;
my $JSON = qr!^200 application/json!;

like(type_of($PB), $PROTO, 'protobuf alone');
like(type_of("$PB;q=0.2, text/plain;version=0.0.4;q=0.9"), $TEXT,
	'text at a higher q than protobuf: text');
like(type_of("text/plain;q=1, $PB;q=0.5"), $TEXT,
	'text first at a higher q: text');
like(type_of("$PB;q=0.2, application/json;q=0.5"), $JSON,
	'JSON at a higher q than protobuf: JSON');
like(type_of("text/plain;q=0.9, $PB;q=0.95"), $PROTO,
	'protobuf at a higher q than text: protobuf');
like(type_of("text/plain;version=0.0.4, $PB"), $PROTO,
	'protobuf and text at the same q: protobuf');
like(type_of("$PB;q=0.0"), $TEXT, 'q=0.0 refuses protobuf');
like(type_of("$PB;q=0.000, text/plain;q=0.001"), $TEXT,
	'q=0.000 refuses protobuf');
like(type_of('text/plain;q=0.1', $PB), $PROTO,
	'two Accept headers: protobuf from the second');
like(type_of($PB, 'text/plain;q=1, application/json;q=0.1'), $PROTO,
	'two Accept headers: protobuf and text at q=1');
like(type_of('*/*'), $TEXT, 'a wildcard: text');

# 40 KB of media ranges before the protobuf, then text at a higher q

my $junk = join(',', map { "x/y$_;a=b;q=0.1" } 1 .. 2500);

like(type_of("$junk,$PB;q=0.3"), $PROTO, 'protobuf after 40 KB of ranges');
like(type_of("$junk,$PB;q=0.3,text/plain;q=0.4"), $TEXT,
	'text after 40 KB of ranges and protobuf, at a higher q: text');

# OpenMetrics and JSON by q-value too (RFC 9110: q=0 is "not acceptable")

my $OMT = 'application/openmetrics-text';
my $OPENM = qr!^200 application/openmetrics-text; version=1\.0\.0!;

like(type_of("$OMT;version=1.0.0,$OMT;version=0.0.1;q=0.75,"
	. "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), $OPENM,
	'Prometheus\' own Accept: OpenMetrics');
like(type_of("$OMT;q=0, text/plain"), $TEXT, 'q=0 refuses OpenMetrics');
like(type_of("text/plain;q=1, $OMT;q=0.1"), $TEXT,
	'text at a higher q than OpenMetrics: text');
like(type_of("text/plain, $OMT"), $OPENM,
	'OpenMetrics and text at the same q: OpenMetrics');
like(type_of("application/json;q=0, text/plain"), $TEXT, 'q=0 refuses JSON');
like(type_of("application/json;q=0.9, $OMT;q=0.5"), $JSON,
	'JSON at a higher q than OpenMetrics: JSON');
like(type_of("text/plain;q=0.8, application/json;q=0.3"), $TEXT,
	'text at a higher q than JSON: text');
like(type_of("application/json, text/plain"), $JSON,
	'JSON and text at the same q: JSON');

# quoted-string parameter values (RFC 9110 5.6.4, 5.6.6): their ',' and
# ';' do not end the media range or the parameter

like(type_of(qq{$OMT;x="a,b";q=0.1, text/plain;q=0.5}), $TEXT,
	'a comma in a quoted value: OpenMetrics keeps its q=0.1');
like(type_of(qq{text/plain;x="a,$PB;y=b"}), $TEXT,
	'a media range inside a quoted value is not asked for');
like(type_of(qq{$OMT;x="a;q=0", text/plain;q=0.5}), $OPENM,
	'a q=0 inside a quoted value refuses nothing');
like(type_of(qq{$OMT;x="a\\",b";q=0.1, text/plain;q=0.5}), $TEXT,
	'an escaped quote in a quoted value');
like(type_of(qq{application/vnd.google.protobuf;}
	. qq{proto="io.prometheus.client.MetricFamily";encoding="delimited"}),
	$PROTO, 'proto and encoding as quoted strings: protobuf');
like(type_of(qq{$OMT;x="a,b, text/plain;q=0.5}), $OPENM,
	'an unterminated quoted value runs to the end of the header');

# q-values out of the grammar: above 1 is 1, whatever its digits

like(type_of("$OMT;q=2, text/plain;q=0.5"), $OPENM, 'q=2 counts as 1');
like(type_of("$OMT;q=99999, text/plain;q=1"), $OPENM,
	'q=99999 counts as 1');
like(type_of("$OMT;q=1.0001, text/plain;q=0.999"), $OPENM,
	'q=1.0001 counts as 1');
like(type_of("$OMT;q=-1, text/plain;q=0.001"), $TEXT, 'q=-1 refuses');

###############################################################################
