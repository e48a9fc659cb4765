#!/usr/bin/perl

# bench/stuck.pl: N scrapes that are sent and never read.
#
#   stuck.pl PORT PATH N
#
# Opens N connections with a small receive buffer, sends a GET of PATH on
# each, prints "ready" once all are sent, then holds them, reading nothing,
# until stdin closes.

use warnings;
use strict;

use IO::Socket::INET;
use Socket qw/ SOL_SOCKET SO_RCVBUF /;

my ($port, $path, $n) = @ARGV;
die "usage: $0 PORT PATH N\n" unless $n;

$| = 1;

my @s;

for (1 .. $n) {
	my $s = IO::Socket::INET->new(Proto => 'tcp')
		or die "socket: $!\n";
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
	$s->connect(Socket::pack_sockaddr_in($port,
		Socket::inet_aton('127.0.0.1'))) or die "connect: $!\n";
	syswrite($s, "GET $path HTTP/1.1\r\nHost: bench\r\n\r\n");
	push @s, $s;
}

print "ready\n";

1 while <STDIN>;
