#!/usr/bin/perl

# Builds and runs the C unit tests of t/unit/ (the pure parts of the module:
# the WebSocket frame reader, label escaping) against the headers of the
# configured nginx tree in build/.

use warnings;
use strict;

use Test::More;
use File::Basename qw(basename dirname);
use File::Spec;

my $top = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $build = $ENV{RAILGUN_BUILD} || "$top/build";
my $ngx = "$build/nginx";

plan(skip_all => "no configured nginx tree in $build: run make first")
    unless -d "$ngx/src/core" && -f "$build/objs/ngx_auto_config.h";

my @inc = map { "-I$_" } ("$ngx/src/core", "$ngx/src/event",
    "$ngx/src/os/unix", "$build/objs", "$top/src");

my %sources = (
    wsframe_test => ['src/ngx_railgun_wsframe.c'],
    labels_test => ['src/ngx_railgun_labels.c'],
);

mkdir "$build/unit";

for my $test (sort keys %sources) {
    my $bin = "$build/unit/$test";
    my @cmd = ('cc', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter',
        '-g', '-O1', @inc, "$top/t/unit/$test.c",
        (map { "$top/$_" } @{$sources{$test}}), '-o', $bin);

    is(system(@cmd), 0, "$test builds") or next;

    my @out = `$bin`;
    my $rc = $? >> 8;

    for (@out) {
        chomp;
        if (/^(not )?ok \d+ - (.*)$/) {
            ok(!$1, "$test: $2");
        }
    }

    is($rc, 0, "$test exits 0");
}

done_testing();
