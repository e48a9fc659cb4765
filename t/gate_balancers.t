#!/usr/bin/perl

# The health gate under every stock balancer: round robin with weights,
# least_conn, hash (plain and consistent), ip_hash, random (and random two
# least_conn), keepalive, zone, and a two-server upstream with all of zone,
# least_conn and keepalive; each once with railgun_check before the balancer
# directives and once after them and the servers.
#
# The backends stay up and serve everything; a "sick" one only fails its
# health checks.  So a request the balancer sent to it would succeed there
# and show in its access log: while it is down by its checks, none may.
# Once it passes its checks again it must get traffic back at once, though
# every server has max_fails=1 fail_timeout=60s: a peer skipped by the gate
# was never marked failed.
#
# Two rounds: the sick backend is first the one ip_hash picks for 127.0.0.1
# (so that ip_hash has to move), then one of the two-server upstream.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $CHECK = 'railgun_check uri=/health interval=200ms timeout=150ms '
	. 'rise=2 fall=2;';
my $SRV = 'max_fails=1 fail_timeout=60s';
my $KA = 'proxy_http_version 1.1; proxy_set_header Connection "";';

# name => [ balancer directives, servers (ports and weights), location ]

my @KINDS = (
	[ 'rr', '', { 8081 => 3, 8082 => 2, 8083 => 1 }, '' ],
	[ 'least_conn', 'least_conn;', undef, '' ],
	[ 'hash', 'hash $arg_k;', undef, '' ],
	[ 'chash', 'hash $arg_k consistent;', undef, '' ],
	[ 'ip_hash', 'ip_hash;', undef, '' ],
	[ 'random', 'random;', undef, '' ],
	[ 'random2', 'random two least_conn;', undef, '' ],
	[ 'keepalive', 'keepalive 4;', undef, $KA ],
	[ 'zone', 'zone %s 64k;', undef, '' ],
	[ 'two', 'zone %s 64k; least_conn; keepalive 4;',
		{ 8081 => 1, 8082 => 1 }, $KA ],
);

my (@UPSTREAMS, $upstreams, $locations);

for my $k (@KINDS) {
	my ($kind, $bal, $servers, $loc) = @$k;
	$servers ||= { 8081 => 1, 8082 => 1, 8083 => 1 };

	for my $where (qw/ before after /) {
		my $name = "${kind}_$where";
		(my $b = $bal) =~ s/%s/$name/g;
		my $s = join "\n", map {
			"        server 127.0.0.1:%%PORT_${_}%%"
				. " weight=$servers->{$_} $SRV;"
		} sort keys %$servers;

		$upstreams .= "    upstream $name {\n"
			. ($where eq 'before'
				? "        $CHECK\n        $b\n$s\n"
				: "$s\n        $b\n        $CHECK\n")
			. "    }\n\n";

		$locations .= "        location /$name/ {\n"
			. "            proxy_pass http://$name;\n"
			. "            $loc\n"
			. "        }\n\n";

		push @UPSTREAMS, {
			name => $name,
			kind => $kind,
			ports => [ sort keys %$servers ],
		};
	}
}

my $conf = <<'EOF';

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

%%UPSTREAMS%%
    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        add_header X-Addr $upstream_addr always;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

%%LOCATIONS%%
    }
}

EOF

$conf =~ s/%%UPSTREAMS%%\n/$upstreams/;
$conf =~ s/%%LOCATIONS%%\n/$locations/;

# requests per upstream and phase: whole rounds of the 3:2:1 weights; more
# for random, which must not miss a backend by chance ((2/3)^30), and for
# consistent hash, whose ring is made of the servers' addresses, so of the
# ports of each run: 12 keys left a peer without one now and then
my $N = 12;
my $N_RANDOM = 30;
my $tests = 3 + @UPSTREAMS + 2 * (3 + 2 * @UPSTREAMS);

my $t = Test::Railgun->new()->plan($tests)
	->write_file_expand('nginx.conf', $conf);

my %B = (
	8081 => backend($t, 8081, 'b1'),
	8082 => backend($t, 8082, 'b2'),
	8083 => backend($t, 8083, 'b3'),
);

$t->run();

###############################################################################

# requests to an upstream's location: { backend => count }, and the
# responses that were not 200 from a backend

sub spread {
	my ($u) = @_;

	my (%count, @bad);
	my $n = $u->{kind} =~ /^(?:random|chash)/ ? $N_RANDOM : $N;

	for my $i (1 .. $n) {
		my $r = http_get("/$u->{name}/x?k=$i");
		my ($status, $h) = http_split($r);
		my $b = $h->{'x-backend'} // '-';

		$count{$b}++;
		push @bad, "$i: " . ($status // 'none') . " $b"
			unless ($status // 0) == 200 && $b ne '-';
	}

	return (\%count, \@bad);
}

sub show {
	my ($count) = @_;
	return join ' ', map { "$_=$count->{$_}" } sort keys %$count;
}

# every peer of every upstream with the state $want, as seen by the
# metrics; the peers of $only when given

sub all_peers {
	my ($want, $only) = @_;

	return wait_for(10, sub {
		my $s = scrape_quick($t);

		for my $u (@UPSTREAMS) {
			for my $p (@{$u->{ports}}) {
				next if $only && $B{$p} != $only;
				my $v = peer_up($s, $u->{name}, $B{$p});
				return 0 unless defined $v && $v == $want;
			}
		}

		return 1;
	});
}

###############################################################################

ok(wait_for(10, sub {
	my $s = scrape_quick($t);

	!grep {
		my $u = $_;
		grep { checks($s, $u->{name}, $B{$_}, 'ok') < 1 } @{$u->{ports}}
	} @UPSTREAMS;
}), 'every peer checked');

# all healthy: the balancers as nginx makes them

my %ip_hash;

for my $u (@UPSTREAMS) {
	my ($count, $bad) = spread($u);
	my $n = keys %$count;
	my $ok = !@$bad;

	if ($u->{kind} eq 'rr') {
		# smooth weighted round robin: exactly 3:2:1 over whole rounds
		$ok &&= show($count) eq 'b1=6 b2=4 b3=2';

	} elsif ($u->{kind} eq 'ip_hash') {
		$ok &&= $n == 1;
		$ip_hash{$_} = 1 for keys %$count;

	} else {
		$ok &&= $n == @{$u->{ports}};
	}

	ok($ok, "$u->{name}: all healthy, " . show($count))
		or diag(join "\n", @$bad);
}

my @ip = keys %ip_hash;
is(scalar @ip, 1, 'ip_hash picks one backend for 127.0.0.1');

my ($first) = grep { $_->{name} eq $ip[0] } values %B;
my ($second) = grep { $_ != $first } @B{8081, 8082};

for my $victim ($first, $second) {
	my $v = $victim->{name};

	# sick: down by its checks in every upstream, never picked

	$victim->sick(1);
	ok(all_peers(0, $victim), "$v: down in every upstream");

	my $since = time();

	for my $u (@UPSTREAMS) {
		my ($count, $bad) = spread($u);
		my $has = grep { $B{$_} == $victim } @{$u->{ports}};
		my $others = @{$u->{ports}} - $has;
		my $n = keys %$count;

		ok(!@$bad && !$count->{$v}
			&& ($n == $others || $u->{kind} eq 'ip_hash'),
			"$u->{name}: $v down, " . show($count))
			or diag(join "\n", @$bad);
	}

	my @reached = $victim->traffic(since => $since);
	is(scalar @reached, 0, "$v: no request reached it while down")
		or diag(join "\n", map { "$_->{time} $_->{uri}" }
			@reached[0 .. ($#reached < 9 ? $#reached : 9)]);

	# healthy again: traffic back at once, no fail_timeout to sit out

	$victim->sick(0);
	ok(all_peers(1, $victim), "$v: up in every upstream");

	for my $u (@UPSTREAMS) {
		my ($count, $bad) = spread($u);
		my $has = grep { $B{$_} == $victim } @{$u->{ports}};
		my $want = $has
			&& ($u->{kind} ne 'ip_hash' || $victim == $first);

		ok(!@$bad && ($want ? $count->{$v} : !$count->{$v}),
			"$u->{name}: $v back, " . show($count))
			or diag(join "\n", @$bad);
	}
}

ok(!quick_errors(), 'quick scrapes parse') or diag(join "\n", quick_errors());

###############################################################################
