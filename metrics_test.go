package adauth

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountSignIns(t *testing.T) {
	h := newTestHandler(t, nil)
	ok := testutil.ToFloat64(metrics.signIns.WithLabelValues("local", "success"))
	bad := testutil.ToFloat64(metrics.signIns.WithLabelValues("none", "bad_credentials"))

	res := h.signIn(context.Background(), "alice", "right", "192.0.2.10")
	h.observeSignIn(res.backend, res.outcome)
	res = h.signIn(context.Background(), "alice", "wrong", "192.0.2.10")
	h.observeSignIn(res.backend, res.outcome)

	if d := testutil.ToFloat64(metrics.signIns.WithLabelValues("local", "success")) - ok; d != 1 {
		t.Errorf("success counter moved by %v", d)
	}
	if d := testutil.ToFloat64(metrics.signIns.WithLabelValues("none", "bad_credentials")) - bad; d != 1 {
		t.Errorf("bad_credentials counter moved by %v", d)
	}
	if n := testutil.CollectAndCount(metrics.latency, "adauth_backend_seconds"); n == 0 {
		t.Error("no backend latency observed")
	}
}

func TestMetricsDirectoryUp(t *testing.T) {
	h := newTestHandler(t, nil)
	h.watchDirectory(func() map[string]bool {
		return map[string]bool{"ldaps://dc1.hospital.test": true, "ldaps://dc2.hospital.test": false}
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.dirUp)
	want := `
# HELP adauth_directory_up 1 when the directory server (domain controller) answered at its last use, 0 while it is skipped as failed.
# TYPE adauth_directory_up gauge
adauth_directory_up{server="ldaps://dc1.hospital.test"} 1
adauth_directory_up{server="ldaps://dc2.hospital.test"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "adauth_directory_up"); err != nil {
		t.Fatal(err)
	}
	h.unwatchDirectory()
	if n := testutil.CollectAndCount(metrics.dirUp); n != 0 {
		t.Fatalf("%d series after cleanup", n)
	}
}
