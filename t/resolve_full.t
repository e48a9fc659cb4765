#!/usr/bin/perl

# railgun_check on "server NAME resolve" with a zone too full for the
# probes of the addresses the name resolves to (nginx 1.27.3 and later,
# Angie): an address whose probe finds no room for its state is not
# checked, has no gauge, and is said in the error log once, by address;
# an address that found room before is still checked.  Skipped where nginx
# has no "resolve".

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::DNS;

use Test::Railgun::Gate qw/ wait_for scrape_quick /;

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

    railgun_zone 64k;

    resolver 127.0.0.1:%%PORT_8053%% valid=1s ipv6=off;
    resolver_timeout 1s;

    upstream u {
        zone u 64k;
        railgun_check type=tcp interval=200ms timeout=150ms;
        server api.test:%%PORT_8091%% resolve;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location / {
            railgun_path $uri;
            return 200 "ok\n";
        }
    }
}

EOF

my ($rc, $out) = $t->nginx_t($conf);
plan(skip_all => 'no "server ... resolve" in this nginx')
	if $rc != 0 && $out =~ /invalid parameter "resolve"/;

$t->plan(8)->write_file_expand('nginx.conf', $conf);

# the checks are refused: quick, and nothing to run behind them
my $port = $t->refused_port(8091);

my $dns = dns_server($t, 8053);
dns_set($dns, 'api.test', 'SERVFAIL');

$t->run();

###############################################################################

# an address resolved while the zone has room: checked

dns_set($dns, 'api.test', '127.0.0.2');
my $first = "127.0.0.2:$port";

ok(wait_for(10, sub {
	(Test::Railgun::sample_sum(scrape_quick($t),
		'railgun_probe_checks_total', { probe => 'u', target => $first })
		// 0) > 0;
}), 'an address with room checked');

# series of requests until the zone has no room for one more

my $s;
my $n = 0;

ok(wait_for(30, sub {
	Test::Railgun::http_get('/fill/' . $n++) for 1 .. 20;
	$s = scrape_quick($t);
	(Test::Railgun::sample($s, 'railgun_series_dropped_total',
		{ family => 'railgun_http_requests_total' }) // 0) > 0;
}), "the zone full after $n series");

# the name resolves to more addresses than the zone has room for

my @addrs = map { "127.0.0.$_" } 2 .. 26;
dns_set($dns, 'api.test', @addrs);

sub declined {
	my $re = 'railgun: zone is full: probe "u" (\S+), an address of '
		. '"api\.test", is not run and keeps its initial state';
	return $t->read_file('error.log') =~ /^.*\[error\].*$re.*$/mg;
}

ok(wait_for(10, sub { declined() }), 'an address without room said so');

# two more resolutions: the upstream's timer found the addresses again many
# times (every 100 ms), and said nothing more

my $q = dns_queries($dns, 'api.test');
ok(wait_for(10, sub { dns_queries($dns, 'api.test') >= $q + 2 }),
	'resolved again');

my @declined = declined();
my %once;
$once{$_}++ for @declined;

is(scalar(grep { $once{$_} > 1 } keys %once), 0, 'each address said once')
	or diag(explain \%once);
is(scalar(grep { my $a = $_; !grep { "$_:$port" eq $a } @addrs[1 .. $#addrs] }
	@declined), 0, 'new addresses of the name')
	or diag("@declined");

# those are not checked and have no gauge; the first one still is checked

$s = scrape_quick($t);

my %shown = map { $_->{labels}{peer} => 1 }
	Test::Railgun::series($s, 'railgun_upstream_peer_up', { upstream => 'u' });
my %checked = map { $_->{labels}{target} => 1 }
	grep { $_->{value} > 0 }
	Test::Railgun::series($s, 'railgun_probe_checks_total', { probe => 'u' });

is(scalar(grep { $shown{$_} || $checked{$_} } keys %once), 0,
	'no gauge and no check for an address without room');
ok($shown{$first} && $checked{$first}, 'the first address shown and checked')
	or diag(explain \%shown, \%checked);

###############################################################################
