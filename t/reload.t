#!/usr/bin/perl

# Tests for reloads: counters and start time survive "nginx -s reload"
# (HUP), new locations join in, and a changed railgun_zone size resets the
# counters loudly.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    %%ZONE%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /a/ {
            return 200 "a\n";
        }

        %%EXTRA%%
    }
}

EOF

sub conf {
	my ($zone, $extra) = @_;

	my $c = $CONF;
	$c =~ s/%%ZONE%%/$zone/;
	$c =~ s/%%EXTRA%%/$extra/;
	return $c;
}

my $t = Test::Railgun->new()->plan(19)
	->write_file_expand('nginx.conf', conf('', ''));

$t->run();

###############################################################################

my $REQ = 'railgun_http_requests_total';
my %A = (server => 'localhost', path => '/a/', method => 'GET',
	status => '200');
my %B = (%A, path => '/b/');

sub log_since {
	my ($offset) = @_;
	return substr $t->read_file('error.log'), $offset;
}

# railgun lines at notice, warn or error level in a piece of the log
sub railgun_lines {
	my ($log) = @_;
	return grep { /railgun/i } $log =~ /^.*\[(?:notice|warn|error)\].*$/mg;
}

http_get('/a/') for 1 .. 3;

my $m = $t->metrics();
my $start = sample($m, 'railgun_start_time_seconds');

is(sample($m, $REQ, \%A), 3, 'counted before reload');

# the same configuration again

my $offset = length $t->read_file('error.log');

ok($t->reload(), 'reload');

$m = $t->metrics();
is(sample($m, $REQ, \%A), 3, 'counter kept');
is(sample($m, 'railgun_start_time_seconds'), $start, 'start time kept');
is(join("\n", railgun_lines(log_since($offset))), '',
	'nothing logged about the zone');

http_get('/a/') for 1 .. 2;
is(sample($t->metrics(), $REQ, \%A), 5, 'new workers add to it');

# a new location, the zone size written out as the default

$t->write_file_expand('nginx.conf', conf('railgun_zone 16m;',
	'location /b/ { return 200 "b\n"; }'));

ok($t->reload(), 'reload with a new location');

http_get('/b/');

$m = $t->metrics();
is(sample($m, $REQ, \%A), 5, 'old series kept');
is(sample($m, $REQ, \%B), 1, 'new series');
is(sample($m, 'railgun_start_time_seconds'), $start, 'start time still kept');

# another zone size: counters reset, with a new start time and a log line

sleep 0.05 while time() < $start + 1;

$offset = length $t->read_file('error.log');
$t->write_file_expand('nginx.conf', conf('railgun_zone 32m;',
	'location /b/ { return 200 "b\n"; }'));

ok($t->reload(), 'reload with another zone size');

$m = $t->metrics();
ok(!sample($m, $REQ, \%A), 'counter reset');
is(sample($m, 'railgun_zone_bytes', { state => 'size' }), 32 * 1024 * 1024,
	'new zone size');

my $start2 = sample($m, 'railgun_start_time_seconds');
ok($start2 > $start, 'new start time');

my $reset = qr/\[warn\].*railgun: zone "railgun" size changed from /
	. qr/16777216 to 33554432, counters are reset/;
ok(grep({ /$reset/ } railgun_lines(log_since($offset))), 'reset logged')
	or diag(log_since($offset));

http_get('/a/');
is(sample($t->metrics(), $REQ, \%A), 1, 'counting after reset');

# and kept again across a reload with that size

ok($t->reload(), 'reload with the same new size');

$m = $t->metrics();
is(sample($m, $REQ, \%A), 1, 'counter kept after reset');
is(sample($m, 'railgun_start_time_seconds'), $start2,
	'new start time kept');

###############################################################################
