#!/usr/bin/perl

# What the module's .so exports, and what a reload loads.
#
# nginx opens a dynamic module with RTLD_GLOBAL and looks up only
# ngx_modules, ngx_module_names and ngx_module_order: any other global
# symbol of ours would be bound to the same name of a build already loaded
# (a reload onto another file of the module), mixing two builds' code and
# data.  And a reload onto the same path keeps the object already loaded
# (dlopen() returns it), which is why a new build needs a restart or a
# binary upgrade (docs/operations.md).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use File::Copy qw/ copy /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('nm');

my $MODULE = $Test::Railgun::MODULE;
my $d = $t->testdir();

$t->plan(4);

# the exports

my @exported = sort map { (split ' ')[2] }
	grep { /^\S+ [A-Za-z] \S+$/ } `nm -D --defined-only $MODULE`;
is(join(' ', @exported), 'ngx_module_names ngx_module_order ngx_modules',
	'the module exports what nginx looks up, nothing else')
	or diag("exported: @exported");

# a reload onto the same path, after the file was replaced as dpkg does

copy($MODULE, "$d/mod.so") or die "copy: $!";
chmod 0755, "$d/mod.so";

my $conf = $t->expand(<<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

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

$conf =~ s!load_module \Q$MODULE\E;!load_module $d/mod.so;!
	or die "no load_module in the configuration\n";
$t->write_file('nginx.conf', $conf);
$t->run();

copy($MODULE, "$d/mod.so.new") or die "copy: $!";
rename("$d/mod.so.new", "$d/mod.so") or die "rename: $!";

ok($t->reload(), 'reloaded');

my ($worker) = $t->worker_pids();
my $maps = '';
if (open my $fh, '<', "/proc/$worker/maps") {
	local $/;
	$maps = <$fh>;
}

like($maps, qr!\Q$d\E/mod\.so \(deleted\)$!m,
	'a new worker runs the object loaded before the reload');

is($t->metrics()->{status}, 200, 'and serves the metrics');

###############################################################################
