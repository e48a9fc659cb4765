#!/usr/bin/perl

# Builds and runs the C unit tests of t/unit/ (the pure parts of the module:
# the WebSocket frame reader, label escaping, the store) against the headers
# of the configured nginx tree in build/.  The store's test is built a second
# time with -m32, against the same tree configured for 32 bits (in
# build/m32, once), where ngx_atomic_t is 32 bits: Debian's i386 and armhf.

use warnings;
use strict;

use Test::More;
use File::Basename qw(basename dirname);
use File::Path qw(rmtree);
use File::Spec;

my $top = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $build = $ENV{RAILGUN_BUILD} || "$top/build";
my $ngx = "$build/nginx";

plan(skip_all => "no configured nginx tree in $build: run make first")
    unless -d "$ngx/src/core" && -f "$build/objs/ngx_auto_config.h";

sub includes {
    my ($objs, $http) = @_;
    return map { "-I$_" } ("$ngx/src/core", "$ngx/src/event",
        "$ngx/src/os/unix",
        ($http ? ("$ngx/src/http", "$ngx/src/http/modules",
            "$ngx/src/http/v2") : ()),
        $objs, "$top/src");
}

my %tests = (
    wsframe_test => { src => ['src/ngx_railgun_wsframe.c'] },
    labels_test => { src => ['src/ngx_railgun_labels.c'] },
    store_test => { src => ['src/ngx_railgun_store.c'],
        cflags => ['-DNGX_RAILGUN_STORE_TEST'] },
    # the encoder's source is included by the test: its functions are static
    proto_labels_test => { src => [], http => 1 },
    proto_labels_test_word => { c => 'proto_labels_test', src => [],
        http => 1, cflags => ['-U__SSE2__'] },
    store_test_m32 => { c => 'store_test', src => ['src/ngx_railgun_store.c'],
        cflags => ['-m32', '-DNGX_RAILGUN_STORE_TEST', '-DSTORE_TEST_M32'],
        objs => \&m32_tree },
);

mkdir "$build/unit";

# under make test-asan, the unit tests run with the sanitizers too
my @sanitize = $ENV{RAILGUN_TEST_ASAN}
    ? ('-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
        '-fno-omit-frame-pointer')
    : ();

# nginx's configure, run for -m32 on a copy of the tree: only its
# ngx_auto_config.h is used, so no module and no library is needed

sub m32_tree {
    my $dir = "$build/m32";

    return "$dir/objs" if -f "$dir/objs/ngx_auto_config.h";

    open(my $fh, '>', "$build/unit/m32.c") or return undef;
    print $fh "int main(void) { return sizeof(void *) != 4; }\n";
    close $fh;

    return undef if system('cc', '-m32', "$build/unit/m32.c",
        '-o', "$build/unit/m32") != 0 || system("$build/unit/m32") != 0;

    rmtree($dir);
    mkdir $dir;

    return undef if system('cp', '-a', $ngx, "$dir/nginx") != 0;

    my $rc = system("cd $dir/nginx && ./configure --with-cc-opt=-m32 "
        . "--with-ld-opt=-m32 --without-http --without-pcre "
        . "--builddir=$dir/objs > $dir/configure.log 2>&1");

    return $rc == 0 ? "$dir/objs" : undef;
}

for my $test (sort keys %tests) {
    my $t = $tests{$test};
    my $bin = "$build/unit/$test";
    my $objs = "$build/objs";

    if ($t->{objs}) {
        $objs = $t->{objs}->();

        SKIP: {
            skip "$test: cc -m32 unavailable (gcc-multilib)", 1
                unless defined $objs;
        }

        next unless defined $objs;
    }

    my @cmd = ('cc', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter',
        '-g', '-O1', @{$t->{cflags} || []}, @sanitize,
        includes($objs, $t->{http}),
        "$top/t/unit/" . ($t->{c} || $test) . ".c",
        (map { "$top/$_" } @{$t->{src}}), '-o', $bin);

    is(system(@cmd), 0, "$test builds") or next;

    my @out = `$bin`;
    my $rc = $? >> 8;

    for (@out) {
        chomp;
        if (/^(not )?ok \d+ - (.*)$/) {
            ok(!$1, "$test: $2");
        } elsif (/^# (.*)/) {
            note("$test: $1");
        }
    }

    is($rc, 0, "$test exits 0");
}

done_testing();
