# panko: a small Makefile over PGXS (pgvector style).
#
#   make            build the extension and panko-api
#   make install    install both into the PostgreSQL found by pg_config
#   make demo       install what is missing, build, start a local cluster
#                   with sample events and serve the API (see README)
#   make test       install what is missing, build, run every test
#   make test-regress [TESTS="traits_io get_events"]   pg_regress (sql/test_*.sql)
#   make test-pgtap [TESTS=test/pgtap/04_rls_member.sql]
#   make test-upgrade | test-security | test-worker | test-bench-smoke
#   make test-api [TESTS="events.yaml rbac.yaml"]      panko-api, gabbi files
#                   (each test-* target runs one suite against what is
#                   installed, on a throwaway cluster; run make install first)
#   make bench      run the benchmarks in test/bench (not part of make test)
#   make fuzz       run the query-string fuzzer for a bounded time

EXTENSION = panko
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = panko
OBJS = \
	src/panko.o \
	src/isotime.o \
	src/numbers.o \
	src/traits.o \
	src/traits_names.o \
	src/traits_io.o \
	src/traits_json.o \
	src/traits_ops.o \
	src/traits_query.o \
	src/traits_gin.o \
	src/traits_sel.o \
	src/traits_analyze.o \
	src/traits_summary.o \
	src/event_input.o \
	src/gin_entry.o \
	src/event_json.o \
	src/event_query.o \
	src/event_cache.o \
	src/event_scan.o \
	src/api_events.o \
	src/identity.o \
	src/retention.o \
	src/rating.o \
	src/metric.o \
	src/trace_report.o \
	src/trace_notify.o \
	src/worker.o

# sql/panko.sql is the current schema of the event store, and each adapter
# has its own file (sql/rating.sql: CloudKitty's rated data, sql/metric.sql:
# Kaneda's metrics); the build joins them, in this order, into the install
# script of the version in panko.control (never committed, see .gitignore).
SCHEMA_SOURCES = sql/$(EXTENSION).sql sql/rating.sql sql/metric.sql
# Released scripts are installed as they are: the install script of the
# first release, which the upgrade test starts from, and every upgrade
# script (two versions in the name, so never the built script).
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = sql/$(EXTENSION)--0.1.0.sql $(wildcard sql/$(EXTENSION)--*--*.sql)
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql

# pg_regress inputs are sql/test_<name>.sql, outputs expected/test_<name>.out
# (installed scripts are sql/panko*.sql).  TESTS=name runs one or some.
ifdef TESTS
REGRESS = $(addprefix test_,$(TESTS))
else
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/test_*.sql)))
endif
REGRESS_OPTS = --inputdir=. --outputdir=. --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src

# Every file includes the layout header: rebuild all when a header changes.
$(OBJS): $(wildcard src/*.h)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SCHEMA_SOURCES)
	cat $^ > $@

# Targets that must work before PostgreSQL's development files exist.
.DEFAULT_GOAL := all
.PHONY: test demo bench fuzz deps api test-regress test-pgtap test-upgrade test-security \
	test-worker test-api test-bench-smoke schema-sources

# (test/upgrade.sh compares the installed script with these)
schema-sources:
	@echo $(SCHEMA_SOURCES)

test:
	bash test/run.sh

test-regress:
	bash test/regress.sh $(TESTS)
test-pgtap:
	bash test/pgtap/run.sh $(TESTS)
test-upgrade:
	bash test/upgrade.sh
test-security:
	bash test/security/run.sh
test-worker:
	bash test/worker/run.sh
test-api:
	bash test/api/run.sh $(TESTS)
test-bench-smoke:
	bash test/bench/run.sh --smoke

demo:
	bash test/demo.sh

bench:
	bash test/bench/run.sh

deps:
	bash test/deps.sh

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)

# panko-api: the HTTP server, a PROGRAM of its own (PGXS allows one
# MODULE_big or PROGRAM per Makefile), built and installed from here.
API_MAKE = $(MAKE) -C src/api PG_CONFIG=$(PG_CONFIG)
all: api
api:
	$(API_MAKE)
install: install-api
install-api: api
	$(API_MAKE) install
# panko_drivers (python/): the adapters (OSProfiler's panko:// driver) for
# Debian's /usr/bin/python3, in its first site-packages directory (set
# PYTHON, or PYTHON_SITEDIR, to install elsewhere)
PYTHON ?= /usr/bin/python3
.PHONY: install-python
install: install-python
install-python:
	$(PYTHON) python/install.py --version $(EXTVERSION) $(if $(DESTDIR),--root $(DESTDIR)) $(if $(PYTHON_SITEDIR),--sitedir $(PYTHON_SITEDIR))
clean: clean-api
clean-api:
	$(API_MAKE) clean
fuzz:
	$(API_MAKE) fuzz
endif
