#!/usr/bin/perl

# Drain: railgun_gate ... drain_file=PATH answers 503
# {"status":"draining",...} while PATH exists, with the names' states as
# ever, and 200 again once it is gone; the probes go on meanwhile.  A
# relative PATH is relative to nginx's prefix.  An empty or second
# drain_file= is refused by nginx -t.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use JSON::PP ();

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(13);

my $d = $t->testdir();

my $CONF = <<"EOF";

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe svc tcp://127.0.0.1:%%PORT_7601%% interval=200ms rise=1 fall=1;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location = /ready {
            railgun_gate svc drain_file=$d/drain;
        }

        location = /ready/relative {
            railgun_gate drain_file=drain-rel svc;
        }

        %%EXTRA%%
    }
}

EOF

(my $conf = $CONF) =~ s/%%EXTRA%%//;
$t->write_file_expand('nginx.conf', $conf);

fake_server($t, 7601, 'close_first');

$t->run();

sub gate_json {
	my ($uri) = @_;
	my ($status, undef, $body) = http_split(http_get($uri));
	return ($status, eval { JSON::PP::decode_json($body // '') });
}

ok(wait_for(5, sub { (gate_json('/ready'))[0] == 200 }), 'ready');

# the file appears: draining, the probe's state still told

$t->write_file('drain', '');

my ($status, $j) = gate_json('/ready');
is($status, 503, 'draining: 503');
is_deeply($j, { status => 'draining', svc => JSON::PP::true },
	'draining: the status and the states');
is((gate_json('/ready/relative'))[0], 200,
	'another file for the other location');

# the probe goes on meanwhile

my $base = probe_checks_total(scrape_fast($t), 'svc');
ok(wait_for(5, sub { probe_checks_total(scrape_fast($t), 'svc') >= $base + 3 }),
	'the probe goes on while draining');
is(probe_up(scrape_fast($t), 'svc'), 1, 'and stays up');
is((gate_json('/ready'))[0], 503, 'still draining');

unlink "$d/drain";
is((gate_json('/ready'))[0], 200, 'the file gone: ready again');

# relative to the prefix

$t->write_file('drain-rel', '');
($status, $j) = gate_json('/ready/relative');
is($status, 503, 'a relative drain_file');
is($j->{status}, 'draining', 'a relative drain_file: draining');

# configuration mistakes

for my $bad ([ 'railgun_gate svc drain_file=;', 'empty' ],
	[ 'railgun_gate svc drain_file=a drain_file=b;', 'twice' ])
{
	(my $c = $CONF) =~ s/%%EXTRA%%/location = \/bad { $bad->[0] }/;
	my ($rc, $out) = $t->nginx_t($c);
	like($out, qr/\[emerg\].*an empty or second "drain_file=" in one railgun_gate.* in \S+:\d+$/m,
		"drain_file $bad->[1]: refused with file and line");
}

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
