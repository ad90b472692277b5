// Package djangotest runs a tiny real Django project that signs users in with
// examples/qatrack/adauth_qatrack.py, the module QATrack+ administrators
// install, so that end-to-end tests see what QATrack+ would see behind adauth.
//
// It uses Debian's /usr/bin/python3 with python3-django (3.2): a python3
// earlier on PATH (pyenv, a virtualenv) often lacks Django.
package djangotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-adauth/adauth/internal/testenv"
)

// Python is the interpreter the tests use.
const Python = "/usr/bin/python3"

// NeedDjango returns the Python interpreter when it can import Django. It
// skips the test otherwise, or fails it when ADAUTH_REQUIRE_SERVERS=1.
func NeedDjango(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(Python, "-c", "import django; print(django.get_version())").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("%s cannot import django (apt-get install -y python3-django): %v: %s", Python, err, bytes.TrimSpace(out))
		if testenv.RequireServers() {
			t.Fatalf("%s; required by ADAUTH_REQUIRE_SERVERS=1", msg)
		}
		t.Skipf("%s; set ADAUTH_REQUIRE_SERVERS=1 to make this a failure", msg)
	}
	return Python
}

// ModuleDir is examples/qatrack, where adauth_qatrack.py lives.
func ModuleDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "qatrack")
}

// Project is a Django project in a temporary directory with an sqlite
// database, migrated.
type Project struct {
	Dir string
	env []string
}

// NewProject writes the project, migrates its database and runs seed (Python
// code run with Django set up, e.g. to create groups) in the same process.
func NewProject(t testing.TB, seed string) *Project {
	t.Helper()
	NeedDjango(t)
	p := &Project{Dir: t.TempDir()}
	p.env = append(os.Environ(),
		"PYTHONPATH="+ModuleDir(),
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
		"DJANGO_SETTINGS_MODULE=settings",
	)
	for name, body := range map[string]string{
		"manage.py":   managepy,
		"settings.py": settingspy,
		"urls.py":     urlspy,
		"setup.py":    setuppy,
		"seed.py":     seed,
	} {
		if err := os.WriteFile(filepath.Join(p.Dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.command(nil, "setup.py").CombinedOutput(); err != nil {
		t.Fatalf("django setup (migrate, seed): %v\n%s", err, out)
	}
	return p
}

func (p *Project) command(settings map[string]any, args ...string) *exec.Cmd {
	cmd := exec.Command(Python, args...)
	cmd.Dir = p.Dir
	cmd.Env = p.env
	if settings != nil {
		b, _ := json.Marshal(settings)
		cmd.Env = append(append([]string(nil), p.env...), "DJANGOTEST_SETTINGS="+string(b))
	}
	return cmd
}

// Server is one running `manage.py runserver`.
type Server struct {
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
}

// Log returns what the server printed so far (one line per request).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *Server) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(b)
}

// Serve starts Django's development server on a free loopback port with
// extra settings (JSON values assigned in settings.py, e.g.
// "ADAUTH_TRUSTED_PROXIES": []string{"127.0.0.2"}), waits until it answers
// and stops it when the test ends.
func (p *Project) Serve(t testing.TB, settings map[string]any) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if settings == nil {
		settings = map[string]any{}
	}
	s := &Server{URL: "http://" + addr, Addr: addr}
	s.cmd = p.command(settings, "manage.py", "runserver", addr, "--noreload")
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-exited
		}
	})
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("django exited; log:\n%s", s.Log())
		default:
		}
		if resp, err := c.Get(s.URL + "/ping/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("django did not answer on %s; log:\n%s", addr, s.Log())
	return nil
}

// Run executes Python code with Django set up (the project's settings) and
// returns its standard output.
func (p *Project) Run(t testing.TB, code string) string {
	t.Helper()
	cmd := p.command(nil, "-c", "import django; django.setup()\n"+code)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python: %v\n%s%s", err, out.String(), errb.String())
	}
	return strings.TrimSpace(out.String())
}

// Who is what the project's /whoami-django/ view answers.
type Who struct {
	Username      string   `json:"username"`
	Authenticated bool     `json:"is_authenticated"`
	Groups        []string `json:"groups"`
	Email         string   `json:"email"`
	FirstName     string   `json:"first_name"`
	LastName      string   `json:"last_name"`
	Staff         bool     `json:"is_staff"`
	Superuser     bool     `json:"is_superuser"`
	Backend       string   `json:"backend"`
	RemoteAddr    string   `json:"remote_addr"`
	Headers       []string `json:"identity_headers"` // X-Remote-* still in META after the middleware
}

const managepy = `#!/usr/bin/env python3
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
`

// settingspy is QATrack+'s arrangement in miniature: sessions, auth, the
// adauth middleware right after AuthenticationMiddleware, AdauthBackend
// first and ModelBackend kept.
const settingspy = `import json
import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "djangotest-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "adauth_qatrack.AdauthMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "adauth_qatrack.AdauthBackend",
    "django.contrib.auth.backends.ModelBackend",
]
ROOT_URLCONF = "urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(BASE_DIR, "db.sqlite3")}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"qatrack.adauth": {"handlers": ["console"], "level": "INFO"}},
}

# Per-server variations (trusted proxies, group options, cookie name).
globals().update(json.loads(os.environ.get("DJANGOTEST_SETTINGS") or "{}"))
`

const urlspy = `import json

from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpResponse
from django.urls import path


def whoami(request):
    u = request.user
    body = {
        "username": u.get_username() if u.is_authenticated else "",
        "is_authenticated": bool(u.is_authenticated),
        "groups": sorted(g.name for g in u.groups.all()) if u.is_authenticated else [],
        "email": getattr(u, "email", ""),
        "first_name": getattr(u, "first_name", ""),
        "last_name": getattr(u, "last_name", ""),
        "is_staff": bool(getattr(u, "is_staff", False)),
        "is_superuser": bool(getattr(u, "is_superuser", False)),
        "backend": request.session.get(BACKEND_SESSION_KEY, ""),
        "remote_addr": request.META.get("REMOTE_ADDR", ""),
        "identity_headers": sorted(k for k in request.META if k.startswith("HTTP_X_REMOTE_")),
    }
    return HttpResponse(json.dumps(body), content_type="application/json")


def ping(request):
    return HttpResponse("ok")


urlpatterns = [
    path("ping/", ping),
    path("whoami-django/", whoami),
    path("public/whoami/", whoami),
]
`

const setuppy = `import os

import django

django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed.py")) as f:
    exec(compile(f.read(), "seed.py", "exec"))
`
