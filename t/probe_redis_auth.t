#!/usr/bin/perl

# Tests for Redis probes with credentials against a real server: requirepass
# (right, wrong and no password), an ACL user (right and wrong password, an
# unknown user, a user not allowed to run INFO) and database selection.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(17);

my $P = 'interval=300ms timeout=200ms rise=1 fall=1 initial=up';

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe pw_ok      redis://:s3cret\@127.0.0.1:%%PORT_6390%% $P;
    railgun_probe pw_bad     redis://:wrong\@127.0.0.1:%%PORT_6390%% $P;
    railgun_probe pw_none    redis://127.0.0.1:%%PORT_6390%% $P;
    railgun_probe acl_ok     redis://probe:probepass\@127.0.0.1:%%PORT_6390%% $P;
    railgun_probe acl_bad    redis://probe:nope\@127.0.0.1:%%PORT_6390%% $P;
    railgun_probe acl_ghost  redis://ghost:probepass\@127.0.0.1:%%PORT_6390%% $P;
    railgun_probe acl_noinfo redis://noinfo:np\@127.0.0.1:%%PORT_6390%% $P;
    railgun_probe db_ok      redis://probe:probepass\@127.0.0.1:%%PORT_6390%%/3 $P;
    railgun_probe db_bad     redis://:s3cret\@127.0.0.1:%%PORT_6390%%/99 $P;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

my $redis = redis_start($t, 6390, requirepass => 's3cret', databases => 16,
	users => [
		'probe on >probepass ~* +@all',
		'noinfo on >np ~* +@all -info',
	]);

my $T = "127.0.0.1:$redis->{port}";

# the database a probe selects shows in MONITOR's "[db addr]"
my $mon = redis_monitor($redis);

$t->run();

###############################################################################

my @probes = qw/ pw_ok pw_bad pw_none acl_ok acl_bad acl_ghost acl_noinfo
	db_ok db_bad /;

my $s = wait_for(10, sub {
	my $s = scrape_fast($t);
	(grep { probe_checks_total($s, $_) < 3 } @probes) ? 0 : $s;
});
ok($s, 'three checks of every probe');

$s = $t->metrics();

my %c = map { $_ => probe_checks($s, $_) } @probes;

sub only {
	my ($probe, $result) = @_;
	my $c = $c{$probe};

	ok($c->{$result} >= 3
		&& !grep({ $_ ne $result && $c->{$_} != 0 } keys %$c),
		"$probe: $result only")
		or diag(explain $c);
}

only('pw_ok', 'ok');
only('pw_bad', 'auth');
only('pw_none', 'auth');
only('acl_ok', 'ok');
only('acl_bad', 'auth');
only('acl_ghost', 'auth');
only('acl_noinfo', 'error');
only('db_ok', 'ok');
only('db_bad', 'error');

# the reasons, from the transition lines (initial=up fall=1)

like((transition_lines($t, 'pw_bad'))[0] // '',
	qr/"pw_bad" \Q$T\E is down after 1 failed checks, last: auth \(/,
	'wrong password: transition line');
like((transition_lines($t, 'pw_none'))[0] // '',
	qr/"pw_none" \Q$T\E is down after 1 failed checks, last: auth \(/,
	'no password: transition line');
is(scalar(transition_lines($t, 'pw_ok')), 0, 'no transition line when up');

# the probes' PINGs ran in the databases asked for

my @mon = monitor_lines($mon, 0.5);
my @pings = grep { /"PING"/i } @mon;

ok((grep { /\[3 127\.0\.0\.1:\d+\] "PING"/i } @pings),
	'a probe PINGs in database 3')
	or diag(join "\n", @mon[0 .. ($#mon < 20 ? $#mon : 20)]);
ok((grep { /\[0 127\.0\.0\.1:\d+\] "PING"/i } @pings),
	'the others PING in database 0');
ok((grep { /"SELECT" "3"/i } @mon), 'SELECT 3 sent');

# the password never shows in what nginx exposes or logs

unlike($s->{body} . $t->read_file('error.log'), qr/s3cret|probepass/,
	'no password in metrics or log');

###############################################################################
