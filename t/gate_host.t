#!/usr/bin/perl

# The Host of railgun_check's HTTP check is the server as written in the
# upstream, as the Host of an HTTP probe is its URL's: a server named by a
# host name is asked for that name (a name-based virtual host would refuse
# its address), one named by its address for the address, and host= still
# decides over both.  Read off the requests the backends receive.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(4)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream named {
        railgun_check uri=/health/named interval=100ms timeout=1s;
        server localhost:%%PORT_8081%%;
    }

    upstream addressed {
        railgun_check uri=/health/addressed interval=100ms timeout=1s;
        server 127.0.0.1:%%PORT_8081%%;
    }

    upstream given {
        railgun_check uri=/health/given interval=100ms timeout=1s
                      host=api.internal;
        server localhost:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location / {
            proxy_pass http://named;
        }
    }
}

EOF

my $log = $t->testdir() . '/hosts.log';
my $p = port(8081);

$t->http_backend(8081, handler => sub {
	my ($method, $uri, $h) = @_;

	if (open my $fh, '>>', $log) {
		print $fh "$uri $h->{host}\n";
		close $fh;
	}

	return;
});

$t->run();

###############################################################################

# the Host of each upstream's first check on 127.0.0.1 ("localhost" may
# also resolve to ::1, where nothing listens)

sub host_of {
	my ($which) = @_;

	open my $fh, '<', $log or return undef;
	for (<$fh>) {
		return $1 if m!^/health/\Q$which\E (\S+)!;
	}
	return undef;
}

ok(wait_for(5, sub { host_of('named') && host_of('addressed')
	&& host_of('given') }), 'every upstream checked');

is(host_of('named'), "localhost:$p", 'a named server: its name');
is(host_of('addressed'), "127.0.0.1:$p", 'an addressed server: its address');
is(host_of('given'), 'api.internal', 'host= decides');

###############################################################################
