#!/usr/bin/perl

# The Debian package (make deb, .ci/deb): built with debhelper's nginx_mod
# build system, installed on this machine with dpkg -i, loaded by the
# system's nginx the way Debian loads its own modules (the modules-available
# snippet, linked into modules-enabled), then purged.
#
# It installs a package on the machine: it runs only as root, and skips
# when libnginx-mod-http-railgun is installed already (an operator's copy is
# never replaced or removed).  Needs dpkg-dev, debhelper and nginx-dev.
# The .deb in build/ is reused when it is newer than the module's sources
# and the packaging files; else .ci/deb builds it (about a minute).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use File::Find ();
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $PKG = 'libnginx-mod-http-railgun';
my $REPO = $Test::Railgun::REPO;
my $NGINX = '/usr/sbin/nginx';
my $SO = '/usr/lib/nginx/modules/ngx_http_railgun_module.so';
my $SNIPPET = '/usr/share/nginx/modules-available/mod-http-railgun.conf';
my $ENABLED = '/etc/nginx/modules-enabled/50-mod-http-railgun.conf';

plan(skip_all => 'installs a package: root only') if $> != 0;
plan(skip_all => 'needs dpkg-buildpackage, dh and the nginx_mod build '
	. 'system (apt-get install dpkg-dev debhelper nginx-dev)')
	unless have('dpkg-buildpackage') && have('dh')
	&& -f '/usr/share/perl5/Debian/Debhelper/Buildsystem/nginx_mod.pm';
plan(skip_all => "needs Debian's nginx at $NGINX") unless -x $NGINX;
plan(skip_all => "$PKG is installed on this machine: not touching it")
	if installed();

my $t = Test::Railgun->new()->plan(16);
my $D = $t->testdir();

sub have {
	my ($bin) = @_;
	return grep { -x "$_/$bin" } split /:/, ($ENV{PATH} || '');
}

sub installed {
	my $s = `dpkg-query -W -f='\${Status}' $PKG 2>/dev/null`;
	return $s =~ /install ok installed/;
}

sub run {
	my $out = `@_ 2>&1`;
	return ($? >> 8, $out);
}

sub mtime { (stat $_[0])[9] || 0 }

sub slurp {
	open my $fh, '<', $_[0] or return '';
	local $/;
	return scalar <$fh>;
}

###############################################################################

# the package: reused if newer than what goes into it

my ($version) = `sed -n '1s/^[^ ]* (\\(.*\\)).*/\\1/p' $REPO/.ci/debian/changelog`
	=~ /^(\S+)/;
my ($arch) = `dpkg --print-architecture` =~ /^(\S+)/;
my $deb = "$REPO/build/${PKG}_${version}_$arch.deb";

my $newest = 0;
File::Find::find(sub { $newest = mtime($_) if -f && mtime($_) > $newest },
	"$REPO/src", "$REPO/.ci/debian");
$newest = mtime("$REPO/config") if mtime("$REPO/config") > $newest;

SKIP: {
	skip 'the .deb in build/ is up to date', 1 if mtime($deb) > $newest;

	my ($rc, $out) = run("$REPO/.ci/deb");
	is($rc, 0, 'make deb builds the package') or diag($out);
}

ok(-f $deb, "build/${PKG}_${version}_$arch.deb")
	or BAIL_OUT('no package to install');

my ($rc, $out) = run('dpkg-deb', '--contents', $deb);
like($out, qr!\./usr/lib/nginx/modules/ngx_http_railgun_module\.so$!m,
	'the package has the module');
like($out, qr!\./usr/share/nginx/modules-available/mod-http-railgun\.conf$!m,
	'the package has the modules-available snippet');

# the system's own configuration, before: must it pass after too?

my ($sys_rc) = run($NGINX, '-t', '-q');

###############################################################################

# install

my $was_installed = 0;

END {
	# whatever happened above, leave the machine as it was
	if ($was_installed && installed()) {
		system("dpkg --purge $PKG > /dev/null 2>&1");
	}
}

($rc, $out) = run('dpkg', '-i', $deb);
$was_installed = 1;
is($rc, 0, 'dpkg -i') or diag($out);

ok(-f $SO, "installed $SO");
is(slurp($SNIPPET), "load_module modules/ngx_http_railgun_module.so;\n",
	"$SNIPPET: the load_module line");
is(readlink($ENABLED) // '', $SNIPPET, "enabled: $ENABLED");

# the system nginx, with a configuration that includes the snippet as
# Debian's nginx.conf includes modules-enabled/*.conf: no -p, so that
# "modules/" is nginx's own prefix

my $port = port(8080);

$t->write_file('deb.conf', <<"EOF");
include $SNIPPET;

pid        $D/nginx.pid;
error_log  $D/error.log info;

events {
}

http {
    access_log             off;
    client_body_temp_path  $D/client_body_temp;
    proxy_temp_path        $D/proxy_temp;
    fastcgi_temp_path      $D/fastcgi_temp;
    uwsgi_temp_path        $D/uwsgi_temp;
    scgi_temp_path         $D/scgi_temp;

    railgun_zone  1m;

    server {
        listen  127.0.0.1:$port;

        location = /metrics {
            railgun_metrics;
        }
    }
}
EOF

($rc, $out) = run($NGINX, '-t', '-e', "$D/stderr", '-c', "$D/deb.conf");
is($rc, 0, 'nginx -t with the snippet') or diag($out);
like($out, qr/test is successful/, 'nginx -t: test is successful');

SKIP: {
	skip "the system's nginx -t failed before the install", 1
		if $sys_rc != 0;

	($rc, $out) = run($NGINX, '-t');
	is($rc, 0, "nginx -t of the system's configuration, module enabled")
		or diag($out);
}

# and it runs: the metrics of the packaged module

($rc, $out) = run($NGINX, '-e', "$D/stderr", '-c', "$D/deb.conf");
is($rc, 0, 'the system nginx starts with the packaged module')
	or diag($out);

waitforsocket("127.0.0.1:$port");
my $s = $t->metrics(port => 8080);
my $upstream = $version =~ s/-[^-]*$//r;
like($s->{body} // '',
	qr/^railgun_build_info\{version="\Q$upstream\E",nginx_version="[\d.]+",software="nginx",software_version="[\d.]+"\} 1$/m,
	'its metrics name the packaged version');

my $pid = $t->read_file('nginx.pid');
if ($pid =~ /^(\d+)/) {
	my $master = $1;
	kill 'QUIT', $master;
	my $deadline = time() + 10;
	sleep 0.05 while time() < $deadline
		&& slurp("/proc/$master/stat") =~ /^\d+ \(.*\) [^ZX]/;
}

###############################################################################

# purge

($rc, $out) = run('dpkg', '--purge', $PKG);
is($rc, 0, 'dpkg --purge') or diag($out);
$was_installed = 0;

ok(!-e $SO && !-e $SNIPPET && !-e $ENABLED && !-l $ENABLED,
	'module, snippet and link gone');

SKIP: {
	skip "the system's nginx -t failed before the install", 1
		if $sys_rc != 0;

	($rc, $out) = run($NGINX, '-t');
	is($rc, 0, "nginx -t of the system's configuration after the purge")
		or diag($out);
}

###############################################################################
