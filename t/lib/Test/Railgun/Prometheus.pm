package Test::Railgun::Prometheus;

# A real Prometheus (Debian's) for the tests that judge the module by what
# Prometheus makes of it, with its HTTP API:
#
#   my $p = Test::Railgun::Prometheus->start($t, port => 8086,
#       target => 8080, job => 'railgun', interval => 1,
#       features => [ 'native-histograms' ]);
#       writes NAME.yml and starts prometheus on logical port 8086 (a
#       daemon of $t: it stops with the test), scraping the target every
#       interval seconds; config => TEXT is the whole prometheus.yml
#       instead (target, job, interval unused); name => NAME names the
#       config file and the storage directory (prometheus); wait => S is
#       wait_query's timeout (20 s)
#   $p->ready               true once /-/ready answers 200 (30 s at most)
#   $p->scraped($job)       true once up{job="JOB"} is 1 (20 s at most)
#   $p->api($path)          GET of the API, decoded: {error => BODY} when
#                           the body is not JSON
#   $p->query($promql)      /api/v1/query of an instant query, decoded
#   $p->query1($promql)     the value of a query answering one sample, or
#                           undef (with a diag of what it answered);
#                           query1_quiet without the diag
#   $p->wait_query($promql, $want, $timeout)
#                           polls query1_quiet until it is $want; returns
#                           the last value
#   $p->exemplars($selector, start => T, end => T)
#                           the exemplars of the series selected
#   wait_for(TIMEOUT, CODE, STEP)
#                           Test::Railgun's; STEP 0.2 s is enough for
#                           Prometheus
#   uri_escape($s)

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT_OK = qw/ wait_for uri_escape /;

use JSON::PP ();
use Test::More ();

use Test::Railgun qw/ port http_get http_status http_body waitforsocket
	wait_for /;

###############################################################################

sub start {
	my ($class, $t, %o) = @_;

	my $name = $o{name} || 'prometheus';
	my $d = $t->testdir();
	my $every = $o{interval} || 1;

	my $self = bless {
		port => $o{port} || 8086,
		wait => $o{wait} || 20,
	}, $class;

	my $config = defined $o{config} ? $o{config} : <<"EOF";
global:
  scrape_interval: ${every}s
  scrape_timeout: ${every}s

scrape_configs:
  - job_name: ${\ ($o{job} || 'railgun') }
    static_configs:
      - targets: ['127.0.0.1:${\ port($o{target} || 8080)}']
EOF

	$t->write_file("$name.yml", $config);

	my @features = @{$o{features} || []};

	$t->run_daemon(['prometheus', "--config.file=$d/$name.yml",
		"--storage.tsdb.path=$d/$name-data",
		'--web.listen-address=127.0.0.1:' . port($self->{port}),
		'--log.level=warn',
		@features ? ('--enable-feature=' . join(',', @features)) : ()]);

	return $self;
}

sub ready {
	my ($self) = @_;

	waitforsocket('127.0.0.1:' . port($self->{port}));

	return wait_for(30, sub {
		(http_status(http_get('/-/ready', port => $self->{port})) // 0)
			== 200
	}, 0.2);
}

sub scraped {
	my ($self, $job) = @_;
	return wait_for(20, sub {
		($self->query1_quiet("up{job=\"$job\"}") // '') eq '1'
	}, 0.2);
}

###############################################################################

sub api {
	my ($self, $path) = @_;
	my $body = http_body(http_get($path, port => $self->{port}));
	return eval { JSON::PP->new->decode($body) } || { error => $body };
}

sub query {
	my ($self, $q) = @_;
	return $self->api('/api/v1/query?query=' . uri_escape($q));
}

sub query1 {
	my ($self, $q) = @_;

	my $res = $self->query($q);
	my @r = @{$res->{data}{result} || []};

	Test::More::diag("$q: " . scalar(@r) . ' results' . ($res->{error}
		? ": $res->{error}" : '')) unless @r == 1;

	return @r == 1 ? $r[0]{value}[1] : undef;
}

sub query1_quiet {
	my ($self, $q) = @_;
	my @r = @{$self->query($q)->{data}{result} || []};
	return @r == 1 ? $r[0]{value}[1] : undef;
}

sub wait_query {
	my ($self, $q, $want, $timeout) = @_;

	my $got;

	wait_for($timeout || $self->{wait}, sub {
		$got = eval { $self->query1_quiet($q) };
		defined $got && $got eq $want;
	}, 0.2);

	return $got;
}

sub exemplars {
	my ($self, $q, %o) = @_;

	my $res = $self->api('/api/v1/query_exemplars?query=' . uri_escape($q)
		. '&start=' . int($o{start}) . '&end=' . int($o{end}));

	return map { @{$_->{exemplars} || []} } @{$res->{data} || []};
}

###############################################################################

sub uri_escape {
	my ($s) = @_;
	$s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
	return $s;
}

###############################################################################

1;
