package adauth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth/internal/caddyrun"
)

// TestReloadUnderLoad: `caddy reload` while signed-in users keep working
// drops no request and signs nobody out. The session key lives in storage
// and the throttle in a usage pool, so a new config takes over seamlessly.
func TestReloadUnderLoad(t *testing.T) {
	up := echoUpstream(t)
	port := caddyrun.FreePort(t)
	in := caddyrun.Start(t, gateCaddyfile(port, up.URL, ""), caddyrun.Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := client(t)
	resp, _ := do(t, c, "POST", base+"/adauth/login", url.Values{"username": {"alice"}, "password": {"demo-alice"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	u, _ := url.Parse(base)
	var cookie string
	for _, ck := range c.Jar.Cookies(u) {
		cookie = ck.Name + "=" + ck.Value
	}

	var total, bad atomic.Int64
	var firstBad atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 20000; n++ { // bounded even if stop never comes
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", base+"/qa/", nil)
				req.Header.Set("Cookie", cookie)
				r, err := hc.Do(req)
				total.Add(1)
				if err != nil {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if r.StatusCode != 200 || !strings.Contains(string(b), `"X-Remote-User":["alice"]`) {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.StatusCode, b))
				}
			}
		}()
	}
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		in.Reload(gateCaddyfile(port, up.URL, fmt.Sprintf("session_idle %dh", i+2)))
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests across 3 reloads, %d failed", total.Load(), bad.Load())
	if bad.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", bad.Load(), total.Load(), firstBad.Load())
	}
	if total.Load() < 100 {
		t.Fatalf("only %d requests ran", total.Load())
	}
}
