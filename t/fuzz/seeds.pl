#!/usr/bin/perl

# Writes the seed corpora of t/fuzz/corpus/: a few valid WebSocket streams
# for wsframe (masked and unmasked, 7-, 16- and 64-bit lengths, fragments,
# control frames, a violation) and label values for labels.  The seeds are
# kept in the repository; run this again only to change them.
#
# A wsframe input is one byte N (0-31), N piece sizes, then the stream.

use warnings;
use strict;

use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::Railgun::WebSocket qw/ ws_frame /;

my $dir = "$FindBin::Bin/corpus";

sub seed {
	my ($corpus, $name, $bytes) = @_;

	mkdir "$dir";
	mkdir "$dir/$corpus";
	open my $fh, '>', "$dir/$corpus/$name" or die "$corpus/$name: $!";
	binmode $fh;
	print $fh $bytes;
	close $fh;
}

sub ws {
	my ($name, $pieces, @frames) = @_;
	my $stream = join '', @frames;
	seed('wsframe', $name, chr(scalar @$pieces) . join('', map { chr }
		@$pieces) . $stream);
}

my $k = "\x37\xfa\x21\x3d";

ws('text-masked', [], ws_frame(1, 'hello', mask => $k));
ws('text-unmasked', [], ws_frame(1, 'hello'));
ws('lengths', [ 1, 1, 1, 1, 7, 200 ],
	ws_frame(2, 'a' x 125, mask => $k), ws_frame(2, 'b' x 126),
	ws_frame(2, 'c' x 300, mask => $k), ws_frame(2, 'd' x 20, len => 64),
	ws_frame(1, 'e' x 3, len => 64, mask => $k));
ws('fragments', [ 1, 1, 1, 1, 2, 3, 0 ],
	ws_frame(1, 'abc', fin => 0, mask => $k), ws_frame(9, 'p1', mask => $k),
	ws_frame(0, 'defg', fin => 0, mask => $k),
	ws_frame(10, 'unsolicited', mask => $k),
	ws_frame(0, '', fin => 0, mask => $k), ws_frame(0, 'hi', mask => $k));
ws('fragments-unmasked', [ 5 ],
	ws_frame(2, 'x' x 130, fin => 0), ws_frame(9, ''),
	ws_frame(0, 'y' x 10, fin => 0), ws_frame(0, 'z'));
ws('empty', [ 1 ],
	ws_frame(1, ''), ws_frame(2, '', mask => $k), ws_frame(9, ''),
	ws_frame(10, '', mask => $k), ws_frame(2, '', fin => 0),
	ws_frame(0, ''));
ws('control', [ 2, 2, 2 ],
	ws_frame(9, 'q' x 125, mask => $k), ws_frame(10, 'r' x 125),
	ws_frame(8, pack('n', 1000) . 'bye', mask => $k));
ws('big', [ 0, 100 ],
	ws_frame(2, 'b' x 3000, mask => $k), ws_frame(1, 'c' x 70, len => 64));
ws('partial', [ 3 ],
	ws_frame(1, 'whole', mask => $k),
	substr(ws_frame(2, 'w' x 1000, mask => $k), 0, 3));
ws('violation', [],
	ws_frame(1, 'ok', mask => $k), ws_frame(3, 'r', mask => $k),
	ws_frame(1, 'after', mask => $k));
ws('top-bit', [ 1, 1 ],
	ws_frame(2, 'ok'), "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x05");

seed('labels', 'path', '/api/v1/users');
seed('labels', 'server', 'api.example.com');
seed('labels', 'escapes', "a\"b\\c\nd\r\te");
seed('labels', 'utf8',
	"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9d\x84\x9e");
seed('labels', 'invalid', "\xff\xfe\x80abc\xc3");
seed('labels', 'surrogate', "\xed\xa0\x80x\xf4\x90\x80\x80");
seed('labels', 'overlong', "\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf");
seed('labels', 'long', 'x' x 255 . "\xe2\x9c\x93" . 'y' x 40);
seed('labels', 'long-quotes', '"' x 300);
