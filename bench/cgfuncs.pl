#!/usr/bin/perl

# bench/cgfuncs.pl: where the module's instructions per request go.
#
#   cgfuncs.pl [--top N] [--object SUBSTR] [--unit U] [--diff TEXT]
#              [--only FUNCTION] DN BARE1 BARE2 MOD1 MOD2
#
# BARE1/BARE2 and MOD1/MOD2 are callgrind output files of runs of bare nginx
# and of nginx with the module, with N1 and N2 = N1 + DN requests.  Every
# figure is per request: (cost in the N2 run - cost in the N1 run) / DN, so
# start-up and shutdown cancel out.  BARE and MOD may be any two
# configurations; --diff names the difference in the heading (default
# "module minus bare"), e.g. "check minus module".  Prints
#
#   1. the functions whose self cost per request grew most with the module
#      (module minus bare), in any object: nginx, libc, the module;
#   2. the module's own functions (the object matching --object, default
#      "railgun"), self and inclusive instructions per request;
#   3. the functions outside the module that the module's functions call,
#      calls and inclusive instructions per request.  A call that bare nginx
#      makes as often without the module (a filter of the module handing the
#      response on to the next filter) is listed apart and left out of the
#      module's inclusive figures: its cost is nginx's, not added.
#
# --unit names what DN counts ("request", "output line").  To look at one
# kind of run alone (the scrape), give its N1 file as both bare files.
# --only FUNCTION prints nothing but that module function's inclusive
# instructions per unit in the MOD runs (as in 2: calls handed on left out).
#
# It reads callgrind's own file format (name compression, relative
# positions), so it does not depend on callgrind_annotate's layout.

use warnings;
use strict;

use File::Basename qw/ basename /;
use Getopt::Long;

my ($top, $object, $unit, $diff, $only) = (15, 'railgun', 'request',
	'module minus bare', undef);

GetOptions('top=i' => \$top, 'object=s' => \$object, 'unit=s' => \$unit,
		'diff=s' => \$diff, 'only=s' => \$only)
	and @ARGV == 5
	or die "usage: $0 [--top N] [--object S] [--unit U] [--diff T] [--only F]"
		. " DN BARE1 BARE2 MOD1 MOD2\n";

my ($dn, @files) = @ARGV;
my ($bare1, $bare2, $mod1, $mod2) = map { parse($_) } @files;

my %obj = (%{$bare1->{obj}}, %{$bare2->{obj}}, %{$mod1->{obj}},
	%{$mod2->{obj}});

sub per_unit {
	my ($a, $b, $what) = @_;
	my %r;
	for my $k (keys %{$a->{$what}}, keys %{$b->{$what}}) {
		$r{$k} = (($b->{$what}{$k} // 0) - ($a->{$what}{$k} // 0)) / $dn;
	}
	return \%r;
}

my $bare_self = per_unit($bare1, $bare2, 'self');
my $bare_ncalls = per_unit($bare1, $bare2, 'ncalls');
my $mod_self = per_unit($mod1, $mod2, 'self');
my $mod_calls = per_unit($mod1, $mod2, 'calls');
my $mod_ncalls = per_unit($mod1, $mod2, 'ncalls');

sub name {
	my ($fn) = @_;
	my $o = $obj{$fn} ? basename($obj{$fn}) : '?';
	$o =~ s/^ngx_http_railgun_module\.so$/railgun.so/;
	return sprintf '%-44s %-11s', substr($fn, 0, 44), $o;
}

sub in_module {
	my ($fn) = @_;
	return ($obj{$fn} // '') =~ /\Q$object\E/;
}

# calls per unit of every function, from any caller

my (%bare_in, %mod_in);
for my $edge (keys %$bare_ncalls) {
	$bare_in{(split /\0/, $edge)[1]} += $bare_ncalls->{$edge};
}
for my $edge (keys %$mod_ncalls) {
	$mod_in{(split /\0/, $edge)[1]} += $mod_ncalls->{$edge};
}

# the added self cost per unit, by function, and in all

my %added;
for my $fn (keys %$bare_self, keys %$mod_self) {
	$added{$fn} = ($mod_self->{$fn} // 0) - ($bare_self->{$fn} // 0);
}

my $sum = 0;
$sum += $_ for values %added;

# the calls from the module to outside it: added, or handed on: the callee
# is not called more often than in bare nginx, or costs more than all that
# the module adds (bare nginx reaches it by a tail jump, not a call, which
# callgrind does not see as a call)

my (%ext, %handed, %handed_edge);
for my $edge (keys %$mod_calls) {
	my ($caller, $callee) = split /\0/, $edge;
	next unless in_module($caller) && !in_module($callee);
	next unless abs($mod_calls->{$edge}) >= 0.05;

	my $n = $mod_ncalls->{$edge};
	my $more = ($mod_in{$callee} // 0) - ($bare_in{$callee} // 0);
	my $h = \%ext;

	if ($n > 0 && $more < 0.5 * $n || $mod_calls->{$edge} > abs($sum) + 1) {
		$h = \%handed;
		$handed_edge{$edge} = 1;
	}

	$h->{$callee}{ir} += $mod_calls->{$edge};
	$h->{$callee}{n} += $n;
	$h->{$callee}{from}{$caller} = 1;
}

# the module's functions, inclusive per unit in MOD (calls handed on left
# out); --only prints one of them alone

my %incl;
for my $fn (grep { in_module($_) } keys %$mod_self) {
	$incl{$fn} = $mod_self->{$fn};
}
for my $edge (keys %$mod_calls) {
	my ($caller, $callee) = split /\0/, $edge;
	next unless in_module($caller) && !$handed_edge{$edge};
	$incl{$caller} += $mod_calls->{$edge};
}

if (defined $only) {
	printf "%.1f\n", $incl{$only} // 0;
	exit 0;
}

# 1. added self cost per unit, by function

if ($files[0] eq $files[1]) {
	printf "Instructions per %s, by function (self cost): %.0f in all\n",
		$unit, $sum;
} else {
	printf "Added instructions per %s, by function (self cost, %s): %.0f"
		. " in all\n", $unit, $diff, $sum;
}
printf "  %10s  %-44s %s\n", "Ir/$unit", 'function', 'object';

my @fns = grep { defined && abs($added{$_}) >= 0.5 }
	(sort { abs($added{$b}) <=> abs($added{$a}) || $a cmp $b }
		keys %added)[0 .. $top - 1];

for my $fn (@fns) {
	printf "  %10.1f  %s\n", $added{$fn}, name($fn);
}

print "  (0x... are nginx's static functions, which the Debian binary has no"
	. " names\n   for; a tail call can move cost between such a function and"
	. " its caller:\n   an equal + and - pair is one cost moved, not added)\n"
	if grep { /^0x/ } @fns;

# 2. the module's functions

printf "\nModule functions, instructions per %s (inclusive: with what they"
	. " call)\n", $unit;
printf "  %10s %10s  %s\n", 'self', 'inclusive', 'function';

for my $fn (sort { $incl{$b} <=> $incl{$a} || $a cmp $b } keys %incl) {
	next if abs($incl{$fn}) < 0.5;
	printf "  %10.1f %10.1f  %s\n", $mod_self->{$fn} // 0, $incl{$fn}, $fn;
}

# 3. what the module calls outside itself

sub calls {
	my ($h, $title) = @_;
	my @fns = grep { abs($h->{$_}{ir}) >= 0.5 } keys %$h;
	return unless @fns;

	print "\n$title\n";
	printf "  %10s %7s  %-44s %-11s %s\n", "Ir/$unit", 'calls', 'function',
		'object', 'called from';

	for my $fn (sort { $h->{$b}{ir} <=> $h->{$a}{ir} || $a cmp $b } @fns) {
		printf "  %10.1f %7.2f  %s %s\n", $h->{$fn}{ir}, $h->{$fn}{n},
			name($fn), join(', ', sort keys %{$h->{$fn}{from}});
	}
}

calls(\%ext, "Called from module functions (outside the module), per $unit,"
	. " inclusive");
calls(\%handed, "Handed on by module functions (bare nginx makes these calls"
	. " as often; not added)");

###############################################################################

# self cost per function, inclusive cost and count of each call edge
# (caller\0callee), and the object of every function

sub parse {
	my ($file) = @_;
	local $_;

	open my $fh, '<', $file or die "$file: $!\n";

	my (%names, %self, %calls, %ncalls, %obj);
	my ($ob, $cob, $fn, $cfn, $call) = ('', undef, '', undef, undef);

	my $name = sub {
		my ($space, $v) = @_;
		if ($v =~ /^\((\d+)\)\s*(.*)$/) {
			$names{$space}{$1} = $2 if length $2;
			return $names{$space}{$1} // "?$1";
		}
		return $v;
	};

	while (<$fh>) {
		chomp;

		if (/^(ob|cob|fn|cfn|fl|fi|fe|cfi|cfl)=(.*)$/) {
			my ($k, $v) = ($1, $2);
			my $space = $k =~ /ob$/ ? 'ob' : $k =~ /fn$/ ? 'fn' : 'fl';
			my $n = $name->($space, $v);

			if ($k eq 'ob') {
				$ob = $n;
			} elsif ($k eq 'cob') {
				$cob = $n;
			} elsif ($k eq 'fn') {
				$fn = $n;
				$obj{$fn} = $ob;
				$cob = undef;
			} elsif ($k eq 'cfn') {
				$cfn = $n;
				$obj{$cfn} //= $cob if defined $cob;
			}
			next;
		}

		if (/^calls=(\d+)/) {
			$call = $1;
			next;
		}

		# a cost line: a position ("+3", "-2", "*" or a number), then Ir

		if (/^(?:[+-]?\d+|\*)\s+(\d+)/) {
			if (defined $call) {
				$calls{"$fn\0$cfn"} += $1;
				$ncalls{"$fn\0$cfn"} += $call;
				$call = undef;
				$cob = undef;
			} else {
				$self{$fn} += $1;
			}
		}
	}

	close $fh;

	return { self => \%self, calls => \%calls, ncalls => \%ncalls,
		obj => \%obj };
}
