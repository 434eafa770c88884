# make test            every test (installs nginx etc. when root): scripts/test
# make bench           the performance figures at full size (~35 min; storage and the fleet need PostgreSQL)
# make bench QUICK=1   the same figures at a smaller scale, without 100,000 checks (~15 min)
# make deb             the Debian package in dist/ (nfpm, a Go tool of this module)
.PHONY: test bench build deb

build:
	go build -o wscanary ./cmd/wscanary

test:
	scripts/test

bench:
	go build -o /tmp/wscanary-bench ./cmd/wscanary-bench
	/tmp/wscanary-bench $(if $(QUICK),-quick)
	# CPU per healthy wss:// attempt by client profile (chrome: uTLS; wscanary: crypto/tls), one run
	go test -run '^$$' -bench 'AttemptTLS' -benchmem -benchtime $(if $(QUICK),500x,3000x) ./monitor/probe
	# store time per outbox message, with 100 and 3,000 waiting (flat: a storm drains in n, not n²)
	go test -run '^$$' -bench 'ClaimFor' -benchtime $(if $(QUICK),200x,1000x) ./monitor/store

deb:
	scripts/deb dist
