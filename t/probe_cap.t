#!/usr/bin/perl

# Tests for probes past railgun_max_series: the cap may fold the exported
# series of the probes past it into the overflow series, but every
# configured probe keeps a state of its own: its own checks at its own
# pace, its own rise and fall, its own transition lines.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(8);

my $P = 'interval=300ms timeout=250ms rise=1 fall=2';

$t->refused_port(7403);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_max_series 2;

    railgun_probe a http://127.0.0.1:%%PORT_7400%%/ $P;
    railgun_probe b http://127.0.0.1:%%PORT_7401%%/ $P;
    railgun_probe c http://127.0.0.1:%%PORT_7402%%/ $P;
    railgun_probe d http://127.0.0.1:%%PORT_7403%%/ $P;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

http_target($t, $_) for 7400 .. 7402;

$t->run();

my $from = time();
sleep 3;
my $to = time();

###############################################################################

# each target is checked at its probe's own pace: ~10 in 3 s

for my $n (7400 .. 7402) {
	my @a = grep { $_->{time} < $to } accepts($t, $n, $from);
	ok(@a >= 7 && @a <= 12, "target $n: " . scalar(@a) . ' checks in 3 s');
}

# up once each, never down; d starts down and stays down, silently

for my $p (qw/ a b c /) {
	my @l = transition_lines($t, $p);
	ok(@l == 1 && $l[0] =~ /is up after 1 successful checks/,
		"$p: one transition, up") or diag(join "\n", @l);
}

my @d = transition_lines($t, 'd');
is(scalar @d, 0, 'd: no transition') or diag(join "\n", @d);

# the exposition stays valid

my $s = $t->metrics();
ok(probe_up($s, 'a'), 'a up in the exposition');

###############################################################################
