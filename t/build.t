#!/usr/bin/perl

# The module builds from any nginx tree: every source file compiles with
# nginx's own warnings and -Werror against the configured tree in build/,
# once as configured (Debian's flags) and once with the modules Debian has
# and a plain ./configure has not (stub_status) taken out of
# ngx_auto_config.h, as "./configure --add-dynamic-module" on an nginx.org
# tree would leave them.

use warnings;
use strict;

use Test::More;
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);

my $top = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $build = $ENV{RAILGUN_BUILD} || "$top/build";
my $ngx = "$build/nginx";

plan(skip_all => "no configured nginx tree in $build: run make first")
    unless -d "$ngx/src/core" && -f "$build/objs/ngx_auto_config.h";

my $dir = tempdir('railgun-build-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);

# objs/ without the features a plain configure does not enable

open my $in, '<', "$build/objs/ngx_auto_config.h" or die "$!";
my $config = do { local $/; <$in> };
close $in;

my $n = $config =~ s/#ifndef NGX_STAT_STUB\n#define NGX_STAT_STUB\s+1\n#endif\n//;
is($n, 1, 'configured tree has stub_status, taken out');

mkdir "$dir/objs";
open my $out, '>', "$dir/objs/ngx_auto_config.h" or die "$!";
print $out $config;
close $out;

system('cp', "$build/objs/ngx_auto_headers.h",
    "$build/objs/ngx_http_railgun_status_files.h", "$dir/objs/") == 0
    or die "cp: $?";

my @srcs = sort glob("$top/src/*.c");
ok(@srcs > 0, 'sources found');

for my $variant ([ 'configured', "$build/objs" ],
    [ 'without stub_status', "$dir/objs" ])
{
    my ($what, $objs) = @$variant;

    # objs/ of the variant first, then the configured one for the headers
    # the module's config script generates there

    my @inc = map { "-I$_" } ("$ngx/src/core", "$ngx/src/event",
        "$ngx/src/event/modules", "$ngx/src/os/unix", "$top/src", $objs,
        "$build/objs", "$ngx/src/http", "$ngx/src/http/modules",
        "$ngx/src/http/v2");

    for my $src (@srcs) {
        (my $name = $src) =~ s!.*/!!;
        my $err = `cc -c -pipe -O -W -Wall -Wpointer-arith \\
            -Wno-unused-parameter -Werror -fPIC @inc \\
            -o $dir/out.o $src 2>&1`;
        is($?, 0, "$name compiles $what") or diag($err);
    }
}

done_testing();
