# ngx-railgun: build against Debian's nginx-dev (or NGINX_SRC=dir), demo,
# tests, benchmarks.  `make` builds build/ngx_http_railgun_module.so.

NGINX_SRC  ?= /usr/share/nginx/src
BUILD      ?= build
MODULE      = ngx_http_railgun_module.so
TOP        := $(abspath .)

CFLAGS_EXTRA ?= -Werror
ASAN_FLAGS  = -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined

SRCS := config $(wildcard src/*.c src/*.h src/status/*)

.PHONY: all setup module asan test test-asan test-valgrind test-matrix soak \
        demo demo-stop bench fuzz deb clean

all: module

setup:
	@.ci/setup

module: setup $(BUILD)/$(MODULE)

asan: setup
	@$(MAKE) --no-print-directory BUILD=build-asan \
	    CFLAGS_EXTRA="-Werror $(ASAN_FLAGS)" build-asan/$(MODULE)

# Configure the way Debian's nginx_mod debhelper build system does: the
# packaged source tree with its conf_flags, then "make modules".  The tree is
# copied so that the build never writes into /usr/share.
$(BUILD)/Makefile: config
	rm -rf $(BUILD) && mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && bash -c '. ./conf_flags 2>/dev/null || NGX_CONF_FLAGS=(--with-compat); \
	    ./configure \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC $$(dpkg-buildflags --get CPPFLAGS) $(CFLAGS_EXTRA)" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC $(if $(findstring sanitize,$(CFLAGS_EXTRA)),$(ASAN_FLAGS))" \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module="$(TOP)" \
	    --builddir="$(TOP)/$(BUILD)/objs"' > $(TOP)/$(BUILD)/configure.log
	touch $@

$(BUILD)/$(MODULE): $(BUILD)/Makefile $(SRCS)
	$(MAKE) -f $(TOP)/$(BUILD)/objs/Makefile -C $(BUILD)/nginx modules
	@# a new file, not new contents: a running nginx keeps its mapping
	cp $(BUILD)/objs/$(MODULE) $@.tmp && mv -f $@.tmp $@

test: module
	prove -r t/

test-asan: asan
	RAILGUN_TEST_ASAN=1 RAILGUN_MODULE=$(TOP)/build-asan/$(MODULE) prove -r t/

# nginx and Angie built from each tarball of ../shared/nginx-src (or
# RAILGUN_MATRIX_SRC), the module built against each with -Werror, and the
# smoke tests run against each binary; builds cached in
# /var/cache/railgun-matrix (t/matrix/run says how)
test-matrix: setup
	@t/matrix/run

# the suite with nginx under valgrind memcheck: slow, so not in make test
test-valgrind: module
	RAILGUN_TEST_VALGRIND=1 prove -r t/

# load, churn, reloads, flapping probes and a killed worker (SOAK_SECONDS)
soak: module
	@t/soak/run

demo: module
	@conf-examples/demo/demo start

demo-stop:
	@conf-examples/demo/demo stop

bench: module
	@bench/run
	@bench/tls_check
	@bench/native
	@bench/exemplar

# libFuzzer targets of t/fuzz/, each for FUZZ_SECONDS (default 60)
fuzz: module
	@t/fuzz/run

# the Debian package libnginx-mod-http-railgun, built by dh's nginx_mod
deb: setup
	@.ci/deb

clean:
	rm -rf build build-asan
