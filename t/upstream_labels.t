#!/usr/bin/perl

# Upstream labels of each attempt: an attempt is labelled with the upstream
# its peer belongs to, also when error_page moved the request to another
# upstream, and the per-worker cache carries no label from one request to
# another; an address chosen at run time (proxy_pass with variables) never
# becomes a label; "no live upstreams" is not a peer attempt but a sample of
# railgun_upstream_no_live_peers_total.  Every count is checked against the
# access log's $upstream_addr and $upstream_status.

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

my $t = Test::Railgun->new()->plan(21)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # answers 502 to everything
    upstream u_main {
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
    }

    upstream u_fb {
        server 127.0.0.1:%%PORT_8081%%;
    }

    # both refused: after one request, no server is live for a minute
    upstream u_dead {
        server 127.0.0.1:%%PORT_8083%% max_fails=1 fail_timeout=60s;
        server 127.0.0.1:%%PORT_8084%% max_fails=1 fail_timeout=60s;
    }

    # its only server is down: no live server, and a backup that is not
    upstream u_backup {
        server 127.0.0.1:%%PORT_8083%% down;
        server 127.0.0.1:%%PORT_8081%% backup;
    }

    upstream u_down {
        server 127.0.0.1:%%PORT_8083%% down;
    }

    # peers in shared memory, other balancers, cached connections
    upstream u_zone {
        zone u_zone 64k;
        least_conn;
        server 127.0.0.1:%%PORT_8081%%;
        keepalive 4;
    }

    upstream u_zdown {
        zone u_zdown 64k;
        server 127.0.0.1:%%PORT_8083%% down;
    }

    upstream u_hash {
        hash $request_uri;
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /moved/ {
            proxy_pass http://u_main;
            proxy_intercept_errors on;
            error_page 502 = @fb;
        }

        location @fb {
            proxy_pass http://u_fb;
        }

        location /main/ {
            proxy_pass http://u_main;
        }

        location /fb/ {
            proxy_pass http://u_fb;
        }

        # the client names the address
        location /dyn/ {
            proxy_pass http://$arg_h;
        }

        location /dead/ {
            proxy_pass http://u_dead;
        }

        location /backup/ {
            proxy_pass http://u_backup;
        }

        location /down/ {
            proxy_pass http://u_down;
        }

        location /zone/ {
            proxy_pass http://u_zone;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location /zdown/ {
            proxy_pass http://u_zdown;
        }

        location /hash/ {
            proxy_pass http://u_hash;
        }
    }
}

EOF

$t->http_backend(8081);
$t->http_backend(8082, handler => sub { return (502, "bad gateway\n") });
$t->refused_port(8083);
$t->refused_port(8084);
$t->run();

###############################################################################

my $REQ = 'railgun_upstream_requests_total';
my $RESP = 'railgun_upstream_response_duration_seconds';
my $NOLIVE = 'railgun_upstream_no_live_peers_total';

my $p81 = '127.0.0.1:' . port(8081);
my $p82 = '127.0.0.1:' . port(8082);
my $p83 = '127.0.0.1:' . port(8083);
my $p84 = '127.0.0.1:' . port(8084);

# moved first: on a cache keyed by the peer alone, the label of the first
# attempt would stick to the peer for the direct requests that follow

http_get('/moved/') for 1 .. 3;
http_get('/main/') for 1 .. 2;
http_get('/fb/') for 1 .. 2;

# the client's choice: an address nobody configured, one that is a peer of
# u_fb, and the name of u_fb itself (a configured upstream: its labels)

http_get('/dyn/?h=127.0.0.2:' . port(8084));
http_get("/dyn/?h=$p81");
http_get("/dyn/?h=$p81");
http_get('/dyn/?h=u_fb');

http_get('/dead/') for 1 .. 3;
http_get('/backup/') for 1 .. 2;
http_get('/down/') for 1 .. 2;
http_get('/zone/') for 1 .. 3;
http_get('/zdown/') for 1 .. 2;
http_get("/hash/$_") for 1 .. 2;

my $m = $t->metrics();

# attempts as nginx logged them: "addr status" for each, per location

my (%log, %logged);

for my $line (split /\n/, $t->read_file('access.log')) {
	my ($uri, $addr, $status) =
		$line =~ m!"GET (\S+) [^"]*" .* "([^"]*)" "([^"]*)"$! or next;
	next if $uri eq '/metrics';
	(my $loc = $uri) =~ s!^(/[^/]+/).*!$1!;

	my @a = split /, | : /, $addr;
	my @s = split /, | : /, $status;
	$log{$loc}{"$a[$_] $s[$_]"}++ for 0 .. $#a;
	$logged{"$a[$_] $s[$_]"}++ for 0 .. $#a;
}

sub logged {
	my ($loc, $key) = @_;
	return $loc ? $log{$loc}{$key} // 0 : $logged{$key} // 0;
}

# item 1: each attempt with the upstream of its peer

is(sample($m, $REQ, { upstream => 'u_main', peer => $p82, status => '502' }),
	logged(undef, "$p82 502"), 'u_main attempts, moved or not, as logged');
is(logged('/moved/', "$p82 502"), 3, 'moved: three first attempts logged');
is(logged('/moved/', "$p81 200"), 3, 'moved: three fallbacks logged');
is(sample($m, $REQ, { upstream => 'u_fb', peer => $p81, status => '200' }),
	logged('/moved/', "$p81 200") + logged('/fb/', "$p81 200") + 1,
	'u_fb attempts: fallbacks, direct, and one by name, as logged');
is(sample($m, $REQ, { upstream => 'u_backup', peer => $p81,
	status => '200' }), logged('/backup/', "$p81 200"),
	'the same address as a backup of u_backup: its own label');
is(scalar(series($m, $REQ, { upstream => 'u_fb', peer => $p82 })), 0,
	'no attempt of u_main labelled u_fb');
is(sample($m, "${RESP}_count", { upstream => 'u_main', peer => $p82 }),
	logged(undef, "$p82 502"), 'u_main response histogram');

# item 2: the client chooses no series

my @client = grep { $_->{labels}{peer} =~ /^127\.0\.0\.2/ }
	series($m, $REQ);
is(scalar(@client), 0, 'the client-named address is no peer label');
is(scalar(series($m, $REQ, { upstream => '', peer => $p81 })), 0,
	'a client-named peer of u_fb is no peer label either');
my %dyn = map { $_->{labels}{status} => $_->{value} }
	series($m, $REQ, { upstream => '', peer => 'dynamic' });
is(join(' ', map { "$_=$dyn{$_}" } sort keys %dyn),
	'200=' . (logged('/dyn/', "$p81 200") - 1) . ' 502='
	. logged('/dyn/', '127.0.0.2:' . port(8084) . ' 502'),
	'run-time addresses: fixed labels, by status, as logged');

# item 3: no live upstreams

my $dead = logged('/dead/', 'u_dead 502');
ok($dead >= 1, 'nginx logged "no live upstreams" as u_dead');
is(sample($m, $NOLIVE, { upstream => 'u_dead' }), $dead,
	'u_dead: no live peers, as logged');
is(sample($m, $REQ, { upstream => 'u_dead', peer => $p83, status => '502' })
	+ sample($m, $REQ, { upstream => 'u_dead', peer => $p84,
		status => '502' }),
	logged('/dead/', "$p83 502") + logged('/dead/', "$p84 502"),
	'u_dead: the attempts before, as logged');
is(sample($m, $NOLIVE, { upstream => 'u_down' }), 2, 'u_down: no live peers');
is(sample($m, $NOLIVE, { upstream => 'u_zdown' }),
	logged('/zdown/', 'u_zdown 502'), 'u_zdown, peers in a zone: no live');
is(logged('/zdown/', 'u_zdown 502'), 2, 'u_zdown: both logged');

# other balancers, peers in shared memory

is(sample($m, $REQ, { upstream => 'u_zone', peer => $p81, status => '200' }),
	logged('/zone/', "$p81 200"), 'zone, least_conn, keepalive: labelled');
is(sample($m, $REQ, { upstream => 'u_hash', peer => $p81, status => '200' }),
	logged('/hash/', "$p81 200"), 'hash: labelled');

my @names = grep { $_->{labels}{peer} =~ /^u_/ } series($m, $REQ);
is(scalar(@names), 0, 'no upstream name as a peer')
	or diag(join ' ', map { $_->{key} } @names);
is(scalar(series($m, "${RESP}_count", { peer => 'u_dead' })), 0,
	'no upstream name in the response histogram');

is($m->{families}{$NOLIVE}{type}, 'counter', "$NOLIVE is a counter");

###############################################################################
