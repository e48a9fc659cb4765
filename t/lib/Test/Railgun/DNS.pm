package Test::Railgun::DNS;

# A DNS server of the suite's own, for nginx's "resolver" in the tests of
# "server NAME resolve": UDP on 127.0.0.1, answering A queries from a file
# that the test rewrites at run time (read again for every query), and
# logging every query it gets.  No Net::DNS: the wire format of RFC 1035 is
# written by hand, one question per query, as nginx's resolver asks.
#
#   my $dns = dns_server($t, 8053);          # logical port
#   dns_set($dns, 'api.test', '127.0.0.2', '127.0.0.3');   # A records
#   dns_set($dns, 'api.test', 'SERVFAIL');   # or NXDOMAIN
#   dns_queries($dns, 'api.test')            # how many A queries so far
#
# A name the file does not list is NXDOMAIN; AAAA and other types of a
# listed name get an empty answer.  Answers carry TTL 1.

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ dns_server dns_set dns_queries /;

use IO::Socket::INET;
use Socket qw/ inet_aton /;

use Test::Railgun ();

sub dns_server {
	my ($t, $n) = @_;

	my $port = Test::Railgun::port($n);
	my $dir = $t->testdir();

	my $dns = {
		port => $port,
		zone => "$dir/dns-$port.zone",
		log => "$dir/dns-$port.log",
	};

	write_zone($dns, {});

	my $sock = IO::Socket::INET->new(
		Proto => 'udp',
		LocalAddr => "127.0.0.1:$port",
	) or die "dns_server: can't bind udp $port: $!";

	$t->run_daemon(sub {
		my $buf;

		while (1) {
			my $peer = $sock->recv($buf, 4096);
			next unless defined $peer && length $buf >= 12;

			my $reply = eval { answer($dns, $buf) };
			$sock->send($reply, 0, $peer) if defined $reply;
		}
	});

	close $sock;
	return $dns;
}

sub dns_set {
	my ($dns, $name, @records) = @_;

	my $zone = read_zone($dns);
	$zone->{lc $name} = [ @records ];
	write_zone($dns, $zone);
}

sub dns_queries {
	my ($dns, $name) = @_;

	open my $fh, '<', $dns->{log} or return 0;
	my $n = grep { /^\Q$name\E A$/i } <$fh>;
	close $fh;
	return $n;
}

###############################################################################

# the zone file: one "name record record ..." line per name

sub read_zone {
	my ($dns) = @_;

	my %zone;

	open my $fh, '<', $dns->{zone} or return \%zone;
	while (<$fh>) {
		my ($name, @records) = split ' ';
		$zone{$name} = \@records if defined $name;
	}
	close $fh;

	return \%zone;
}

# written aside and renamed: a query never reads half a file

sub write_zone {
	my ($dns, $zone) = @_;

	my $tmp = "$dns->{zone}.tmp";

	open my $fh, '>', $tmp or die "$tmp: $!";
	print $fh join(' ', $_, @{$zone->{$_}}), "\n" for sort keys %$zone;
	close $fh;

	rename $tmp, $dns->{zone} or die "rename $tmp: $!";
}

sub answer {
	my ($dns, $query) = @_;

	my ($id, $flags, $qdcount) = unpack 'n n n', $query;
	return undef if $flags & 0x8000 || $qdcount != 1;

	# the question: labels up to the root, then type and class

	my ($pos, @labels) = (12);

	while (1) {
		my $len = ord substr $query, $pos, 1;
		$pos++;
		last if $len == 0;
		return undef if $len > 63 || $pos + $len > length $query;
		push @labels, substr $query, $pos, $len;
		$pos += $len;
	}

	my ($qtype, $qclass) = unpack 'n n', substr $query, $pos, 4;
	my $question = substr $query, 12, $pos + 4 - 12;
	my $name = lc join '.', @labels;

	my $types = { 1 => 'A', 28 => 'AAAA' };
	if (open my $log, '>>', $dns->{log}) {
		print $log "$name ", ($types->{$qtype} || $qtype), "\n";
		close $log;
	}

	my $records = read_zone($dns)->{$name};

	my ($rcode, @addrs) = (0);

	if (!$records) {
		$rcode = 3;				# NXDOMAIN

	} elsif (@$records && $records->[0] eq 'SERVFAIL') {
		$rcode = 2;

	} elsif (@$records && $records->[0] eq 'NXDOMAIN') {
		$rcode = 3;

	} elsif ($qtype == 1) {
		@addrs = @$records;
	}

	# QR, AA, the query's RD, RA
	my $rflags = 0x8000 | 0x0400 | ($flags & 0x0100) | 0x0080 | $rcode;

	my $reply = pack('n n n n n n', $id, $rflags, 1, scalar @addrs, 0, 0)
		. $question;

	for my $a (@addrs) {
		$reply .= pack('n n n N n', 0xc00c, 1, 1, 1, 4) . inet_aton($a);
	}

	return $reply;
}

1;
