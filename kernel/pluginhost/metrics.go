package pluginhost

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the state of the plugins this process runs (Loaded):
// mqd_plugin_up (1 running, 0 down or restarting), mqd_plugin_crashes_total
// and mqd_plugin_restarts_total, labelled with the plugin's name and kind.
func Collector() prometheus.Collector { return collector{} }

var (
	descUp       = prometheus.NewDesc("mqd_plugin_up", "1 while the out-of-process plugin runs, 0 while it is down or restarting", []string{"plugin", "kind"}, nil)
	descCrashes  = prometheus.NewDesc("mqd_plugin_crashes_total", "times the plugin process exited without being stopped", []string{"plugin", "kind"}, nil)
	descRestarts = prometheus.NewDesc("mqd_plugin_restarts_total", "times the plugin was started again after a crash", []string{"plugin", "kind"}, nil)
)

type collector struct{}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUp
	ch <- descCrashes
	ch <- descRestarts
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range Loaded() {
		up := 0.0
		if s.State == StateRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.Name, s.Kind)
		ch <- prometheus.MustNewConstMetric(descCrashes, prometheus.CounterValue, float64(s.Crashes), s.Name, s.Kind)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(s.Restarts), s.Name, s.Kind)
	}
}
