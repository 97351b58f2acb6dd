// Package deploy holds what operators deploy modgate with, and the tests
// that keep it true to the code:
//
//	prometheus/modgate-rules.yaml       alerting rules; modgate-rules.test.yaml unit-tests them (promtool)
//	grafana/modgate.json                a Grafana dashboard of every metric modgate exports
//	container/Containerfile             a static, non-root container image with git and ssh
//	helm/modgate/                       a Helm chart: probes, secrets by reference, ServiceMonitor, PrometheusRule
//	systemd/modgate.service             a hardened systemd unit
//
// The package has no code of its own. Its tests run the real tools where
// they are installed (promtool, helm, systemd-analyze; a missing one skips
// loudly, or fails under MODGATE_REQUIRE_SERVERS=1 as in .ci/run), check
// that every metric the rules and the dashboard name exists in a scrape of a
// running modgate, and build the binary with the container's flags.
// TestDashboard runs the dashboard's queries against a real Prometheus
// scraping modgate under load, and renders docs/dashboard.png (see its
// comment).
package deploy
