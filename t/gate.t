#!/usr/bin/perl

# The gate endpoint (railgun_gate): 200 {"status":"ready",...} or 503
# {"status":"unavailable",...} with one key per name, in the order given,
# for a Redis probe, an HTTP probe and upstreams with railgun_check, with
# min=N and min=N% (of the peers not configured down, rounded up);
# Content-Type: application/json, Cache-Control: no-store, HEAD, POST 405;
# configuration mistakes of railgun_gate and railgun_check rejected by
# nginx -t with the file and line.  A tcp check passes while the HTTP
# checks fail; the checks feed the probe families.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use JSON::PP ();

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Gate::REDIS)
	->plan(133)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe cache redis://127.0.0.1:%%PORT_8090%%
                  interval=200ms timeout=150ms rise=2 fall=2;
    railgun_probe api http://127.0.0.1:%%PORT_8081%%/health
                  interval=200ms timeout=150ms rise=2 fall=2;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /ready/cache {
            railgun_gate cache;
        }

        location = /ready/api {
            railgun_gate api;
        }

        location = /ready/all {
            railgun_gate cache api u3;
        }

        location = /ready/u3 {
            railgun_gate u3;
        }

        location = /ready/min2 {
            railgun_gate u3:min=2;
        }

        location = /ready/min3 {
            railgun_gate u3:min=3;
        }

        location = /ready/p66 {
            railgun_gate u3:min=66%;
        }

        location = /ready/p67 {
            railgun_gate u3:min=67%;
        }

        location = /ready/u6 {
            railgun_gate u6:min=1;
        }

        location = /ready/u4all {
            railgun_gate u4:min=100%;
        }

        location = /ready/tcp {
            railgun_gate t3;
        }
    }

    # named by the gates above: names resolve once everything is read

    upstream u3 {
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;
        server 127.0.0.1:%%PORT_8083%%;
    }

    # connect checks: a sick backend still accepts
    upstream t3 {
        railgun_check type=tcp interval=200ms timeout=150ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;
        server 127.0.0.1:%%PORT_8083%%;
    }

    # b4 passes its checks, but is configured down: it never counts
    upstream u4 {
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;
        server 127.0.0.1:%%PORT_8083%%;
        server 127.0.0.1:%%PORT_8084%% down;
    }

    # b4 passes its checks, but is configured down; the other server
    # refuses: none of the servers that count is up
    upstream u6 {
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2
                      initial=down;
        server 127.0.0.1:%%PORT_8099%%;
        server 127.0.0.1:%%PORT_8084%% down;
    }
}

EOF

$t->refused_port(8099);

my $redis = redis($t, 8090);
my @b = map { backend($t, 8080 + $_, "b$_") } 1 .. 4;

$t->run();

###############################################################################

# the gate at $path: "STATUS BODY" with the body's end of line dropped

sub g {
	my ($path, %opts) = @_;

	my ($status, $h, $body) = gate($path, %opts);
	$body //= '';
	$body =~ s/\r?\n\z//;
	return ($status // 'none') . " $body";
}

sub ready {
	my (@names) = @_;
	return '200 {"status":"ready",'
		. join(',', map { "\"$_\":true" } @names) . '}';
}

# unavailable('a' => 1, 'b' => 0): 503 with those values in that order

sub unavailable {
	my (@kv) = @_;

	my @pairs;
	while (my ($k, $v) = splice @kv, 0, 2) {
		push @pairs, "\"$k\":" . ($v ? 'true' : 'false');
	}

	return '503 {"status":"unavailable",' . join(',', @pairs) . '}';
}

sub peers_up {
	my ($upstream, $want, @backends) = @_;

	return wait_for(10, sub {
		my $s = scrape_quick($t);
		!grep { (peer_up($s, $upstream, $_) // -1) != $want } @backends;
	});
}

###############################################################################

# the probes start down (initial=down is their default) and rise

ok(wait_for(10, sub { g('/ready/all') =~ /^200 / }), 'probes rose');

is(g('/ready/cache'), ready('cache'), 'redis probe ready');
is(g('/ready/api'), ready('api'), 'http probe ready');
is(g('/ready/all'), ready(qw/ cache api u3 /), 'all ready, names in order');
is(g('/ready/u3'), ready('u3'), 'upstream ready');
is(g('/ready/min2'), ready('u3'), 'min=2 of 3 ready');
is(g('/ready/min3'), ready('u3'), 'min=3 of 3 ready');
is(g('/ready/p66'), ready('u3'), 'min=66% of 3 ready');
is(g('/ready/p67'), ready('u3'), 'min=67% of 3 ready');
is(g('/ready/u4all'), ready('u4'), 'min=100%: of the 3 not down');
is(g('/ready/u6'), unavailable(u6 => 0),
	'a server configured down does not count');
is(g('/ready/tcp'), ready('t3'), 'tcp checks ready');

# the headers, on 200 and on 503

my ($status, $h, $body) = gate('/ready/all');
is($h->{'content-type'}, 'application/json', '200: Content-Type');
is($h->{'cache-control'}, 'no-store', '200: Cache-Control');
is($h->{'content-length'}, length $body, '200: Content-Length');
ok(eval { JSON::PP::decode_json($body) }, '200: the body is JSON')
	or diag($@);

($status, $h, $body) = gate('/ready/u6');
is($h->{'content-type'}, 'application/json', '503: Content-Type');
is($h->{'cache-control'}, 'no-store', '503: Cache-Control');
is_deeply(eval { JSON::PP::decode_json($body) },
	{ status => 'unavailable', u6 => JSON::PP::false },
	'503: the body is JSON');

# HEAD: the same status and headers, no body

my $r = http_get('/ready/all', method => 'HEAD');
($status, $h, $body) = http_split($r);
is($status, 200, 'HEAD 200');
is($h->{'content-type'}, 'application/json', 'HEAD 200: Content-Type');
is($h->{'cache-control'}, 'no-store', 'HEAD 200: Cache-Control');
is($body, '', 'HEAD 200: no body');

($status, $h, $body) = http_split(http_get('/ready/u6', method => 'HEAD'));
is($status, 503, 'HEAD 503');
is($body, '', 'HEAD 503: no body');

# other methods

($status) = http_split(http_get('/ready/all', method => 'POST',
	body => 'x'));
is($status, 405, 'POST 405');

($status) = http_split(http_get('/ready/all', method => 'PUT', body => 'x'));
is($status, 405, 'PUT 405');

# b1 sick: the http probe (which asks b1) and one peer of u3 down

$b[0]->sick(1);

ok(peers_up('u3', 0, $b[0]), 'b1 down in u3');
ok(peers_up('u4', 0, $b[0]), 'b1 down in u4');
ok(wait_for(10, sub { g('/ready/api') =~ /^503 / }), 'api probe down');

is(g('/ready/api'), unavailable(api => 0), 'http probe unavailable');
is(g('/ready/all'), unavailable(cache => 1, api => 0, u3 => 1),
	'one name down: unavailable, each name told');
is(g('/ready/u3'), ready('u3'), '2 of 3: ready');
is(g('/ready/min2'), ready('u3'), '2 of 3: min=2 ready');
is(g('/ready/min3'), unavailable(u3 => 0), '2 of 3: min=3 unavailable');
is(g('/ready/p66'), ready('u3'), '2 of 3: min=66% (2) ready');
is(g('/ready/p67'), unavailable(u3 => 0), '2 of 3: min=67% (3) unavailable');
is(g('/ready/u4all'), unavailable(u4 => 0), '2 of 3: min=100% unavailable');

# b2 as well

$b[1]->sick(1);
ok(peers_up('u3', 0, $b[1]), 'b2 down in u3');

is(g('/ready/u3'), ready('u3'), '1 of 3: ready');
is(g('/ready/min2'), unavailable(u3 => 0), '1 of 3: min=2 unavailable');
is(g('/ready/p66'), unavailable(u3 => 0), '1 of 3: min=66% unavailable');

# and b3: every peer down, though the balancer fails open

$b[2]->sick(1);
ok(peers_up('u3', 0, $b[2]), 'b3 down in u3');

is(g('/ready/u3'), unavailable(u3 => 0), '0 of 3: unavailable');
is(g('/ready/all'), unavailable(cache => 1, api => 0, u3 => 0),
	'0 of 3: all');

($status, $h, $body) = http_split(http_get('/ready/u3', method => 'HEAD'));
is($status, 503, '0 of 3: HEAD 503');

# a connect check passes while the health checks fail

is(g('/ready/tcp'), ready('t3'), '0 of 3 by http: tcp checks ready');

# the checks feed the probe families, labelled by upstream and peer

my $s = $t->metrics();

cmp_ok(checks($s, 'u3', $b[0], 'bad_status'), '>=', 2,
	'bad_status checks counted');
cmp_ok(checks($s, 't3', $b[0], 'ok'), '>=', 2, 'tcp checks counted');
is(transitions($s, 'u3', $b[0], 'down'), 1, 'transition counted');
cmp_ok(sample($s, 'railgun_probe_duration_seconds_count',
	{ probe => 'u3', target => $b[0]{addr} }) // 0, '>=', 2,
	'check durations observed');
is(join(' ', map { peer_up($s, 't3', $_) // 'none' } @b[0 .. 2]), '1 1 1',
	'peer_up of the tcp checks');
is(scalar(series($s, 'railgun_upstream_peer_up', { upstream => 'u4' })), 4,
	'one peer_up series per peer');
is(scalar(series($s, 'railgun_probe_up', { probe => 'u3' })), 0,
	'no probe_up series for a check');

# redis stopped: the redis probe down

$redis->stop();

ok(wait_for(10, sub { g('/ready/cache') =~ /^503 / }), 'redis probe down');
is(g('/ready/cache'), unavailable(cache => 0), 'redis probe unavailable');
is(g('/ready/all'), unavailable(cache => 0, api => 0, u3 => 0),
	'all down');

# all back

$_->sick(0) for @b;
$redis->start();

ok(wait_for(10, sub { g('/ready/all') =~ /^200 / }), 'all rose again');
ok(peers_up('u3', 1, @b[0 .. 2]), 'all peers of u3 up again');
is(g('/ready/all'), ready(qw/ cache api u3 /), 'all ready again');
is(g('/ready/p67'), ready('u3'), 'min=67% ready again');

# b1 stopped: its connect checks fail, two of three still pass

$b[0]->stop();

ok(peers_up('t3', 0, $b[0]), 'stopped: down by its tcp check');
is(g('/ready/tcp'), ready('t3'), 'tcp: 2 of 3 ready');
ok(wait_for(10, sub { checks(scrape_quick($t), 't3', $b[0], 'refused') >= 2 }),
	'refused tcp checks counted');

###############################################################################

# configuration mistakes: nginx -t fails, naming the file and line

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

events {
}

http {
    railgun_probe cache redis://127.0.0.1:%%PORT_8090%%;

    upstream u3 {
        %%CHECK%%
        server 127.0.0.1:%%PORT_8081%%;
    }

    upstream plain {
        server 127.0.0.1:%%PORT_8081%%;
    }

    upstream u5 {
        railgun_check;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%% down;
    }

    server {
        listen       127.0.0.1:%%PORT_8085%%;

        location = /ready {
            %%GATE%%
        }
    }
}

EOF

# $CONF with $text as the gate in the location, or as the check in upstream
# u3 when it starts with railgun_check

sub gate_conf {
	my ($text) = @_;

	my $check = $text =~ /^railgun_check/;
	my $conf = $CONF;
	$conf =~ s/%%GATE%%/$check ? 'railgun_gate u3;' : $text/e;
	$conf =~ s/%%CHECK%%/$check ? $text : 'railgun_check;'/e;

	return $conf;
}

sub nginx_t {
	my ($text) = @_;

	return $t->nginx_t(gate_conf($text));
}

sub rejected {
	my ($text, $re, $name) = @_;

	$t->rejected(gate_conf($text), $text, $re, $name);
}

my ($rc, $out) = nginx_t('railgun_gate cache u3:min=1;');
is($rc, 0, 'a good gate passes nginx -t') or diag($out);
($rc, $out) = nginx_t('railgun_gate u3:min=100%;');
is($rc, 0, 'a good gate with a percentage passes nginx -t') or diag($out);

rejected('railgun_gate nosuch;', qr/railgun_gate names "nosuch"/,
	'unknown name');
rejected('railgun_gate cache plain;', qr/railgun_gate names "plain"/,
	'upstream without railgun_check');
rejected('railgun_gate cache:min=2;', qr/"min" is for upstreams/,
	'min=2 on a probe');
rejected('railgun_gate cache:min=50%;', qr/"min" is for upstreams/,
	'min=50% on a probe');
rejected('railgun_gate cache:min=1;', qr/"min" is for upstreams/,
	'min=1 on a probe');
rejected('railgun_gate u3:min=0;', qr/invalid gate "u3:min=0"/, 'min=0');
rejected('railgun_gate u3:min=101%;', qr/invalid gate "u3:min=101%"/,
	'min=101%');
rejected('railgun_gate u3:max=2;', qr/invalid gate "u3:max=2"/,
	'not min=');

($rc, $out) = nginx_t('railgun_check type=tcp interval=500ms timeout=3s '
	. 'rise=1 fall=5 jitter=100ms initial=down all_down=closed;');
is($rc, 0, 'a good tcp check passes nginx -t') or diag($out);

($rc, $out) = nginx_t('railgun_check uri=/h?x=1 status=200,204,300-399 '
	. 'body=ok host=api.example all_down=open;');
is($rc, 0, 'a good http check passes nginx -t') or diag($out);

rejected('railgun_check foo=bar;', qr/invalid parameter "foo=bar"/,
	'check: unknown parameter');
rejected('railgun_check all_down=maybe;',
	qr/invalid parameter "all_down=maybe"/, 'check: all_down=maybe');
rejected('railgun_check type=udp;', qr/invalid parameter "type=udp"/,
	'check: type=udp');
rejected('railgun_check uri=health;', qr/invalid parameter "uri=health"/,
	'check: uri without /');
rejected('railgun_check role=master;', qr/invalid parameter "role=master"/,
	'check: a Redis parameter');
rejected('railgun_check status=99;', qr/invalid parameter "status=99"/,
	'check: bad status');
rejected('railgun_check interval=1s jitter=2s;',
	qr/jitter must not be more than interval/,
	'check: jitter above interval');
rejected('railgun_gate cache; railgun_metrics;',
	qr/railgun_gate and another content handler/, 'gate and metrics');
rejected('railgun_metrics; railgun_gate cache;',
	qr/railgun_gate and another content handler/, 'metrics and gate');
rejected('railgun_gate cache; proxy_pass http://plain;',
	qr/railgun_gate and another content handler/, 'gate and proxy_pass');
rejected('proxy_pass http://plain; railgun_gate cache;',
	qr/railgun_gate and another content handler/, 'proxy_pass and gate');
rejected('railgun_gate cache u3 cache;', qr/"cache" twice in one railgun_gate/,
	'a name twice');
rejected('railgun_gate u3 u3:min=1;', qr/"u3" twice in one railgun_gate/,
	'an upstream twice');
rejected('railgun_gate u3:min=2;',
	qr/"u3:min=2" asks more than the 1 servers not marked down upstream "u3"/,
	'min above the servers');
rejected('railgun_gate u5:min=2;',
	qr/"u5:min=2" asks more than the 1 servers not marked down upstream "u5"/,
	'min above the servers not marked down');
rejected('railgun_gate drain_file=/x; proxy_pass http://plain;',
	qr/railgun_gate and another content handler/,
	'a gate without names and proxy_pass');
rejected('railgun_check status=200 type=tcp;',
	qr/invalid parameter "status=200"/, 'check: status= before type=tcp');
rejected('railgun_check body=ok type=tcp;',
	qr/invalid parameter "body=ok"/, 'check: body= before type=tcp');
rejected('railgun_check uri=/h type=tcp;',
	qr/invalid parameter "uri=\/h"/, 'check: uri= before type=tcp');
rejected('railgun_check type=tcp host=x;',
	qr/invalid parameter "host=x"/, 'check: host= after type=tcp');
rejected('railgun_check "uri=/a b";',
	qr/a space or a control character would go into the request/,
	'check: a space in uri=');
rejected('railgun_check "host=a\\r\\nX-Injected: 1";',
	qr/a space or a control character would go into the request/,
	'check: CR LF in host=');

# one name, one thing: a probe named as a checked upstream

(my $clash = gate_conf('railgun_gate u3;'))
	=~ s/railgun_probe cache/railgun_probe u3/;
$t->rejected($clash, 'railgun_probe u3',
	qr/probe "u3" has the name of an upstream with railgun_check/,
	'a probe named as a checked upstream');

rejected('railgun_check; railgun_check;',
	qr/"railgun_check" directive is duplicate/, 'check: twice');

ok(!quick_errors(), 'quick scrapes parse') or diag(join "\n", quick_errors());

###############################################################################
