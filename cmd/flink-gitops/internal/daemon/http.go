package daemon

import (
	"fmt"
	"net/http"
)

// httpHandler serves /metrics, /healthz and /readyz.
func (d *Daemon) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.metrics.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	// Ready: a standby replica is ready to take over; the leader once it
	// has rendered and published a first snapshot.
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if d.leading.Load() && !d.ready.Load() {
			st := d.source.Status()
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: waiting for the first snapshot (git available=%v, err=%v)\n", st.Available, st.Err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
