package adauth

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"os"
)

//go:embed pages/login.html
var embeddedPage string

// pages renders adauth's HTML: the login page, the sign-out confirmation
// and message pages (refusals, AD FS errors, 403). One template serves all
// three, told apart by .Page, so a custom login_template restyles them all.
type pages struct {
	tmpl *template.Template
}

// pageData is what the template sees. Every field is escaped by
// html/template; none carries a secret.
type pageData struct {
	Page       string // "login", "logout" or "message"
	Title      string
	Action     string // form target
	Next       string // local path to return to after sign-in
	Username   string // what the user typed, to refill the field
	Error      string
	Info       string
	SignedInAs string
	Password   bool   // a password backend exists: show the form
	SSO        string // AD FS start URL, when configured
	SSOLabel   string
	Home       string // the login page, for "back" links
}

func loadPages(path string) (*pages, error) {
	src := embeddedPage
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("login_template: %w", err)
		}
		src = string(b)
	}
	t, err := template.New("page").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("login_template %s: %w", path, err)
	}
	// Render once now so a template that refers to a missing field fails
	// at start, not on a user's first visit.
	if err := t.Execute(new(bytes.Buffer), pageData{Page: "login", Password: true}); err != nil {
		return nil, fmt.Errorf("login_template %s: %w", path, err)
	}
	return &pages{tmpl: t}, nil
}

func (p *pages) render(w http.ResponseWriter, status int, d pageData) {
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, d); err != nil {
		http.Error(w, "adauth: page template failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (p *pages) login(w http.ResponseWriter, _ *http.Request, status int, d pageData) {
	d.Page = "login"
	p.render(w, status, d)
}

func (p *pages) logout(w http.ResponseWriter, _ *http.Request, d pageData) {
	d.Page = "logout"
	p.render(w, http.StatusOK, d)
}

func (p *pages) message(w http.ResponseWriter, _ *http.Request, status int, title, msg string) {
	p.render(w, status, pageData{Page: "message", Title: title, Error: msg})
}

// pageData fills what every page shows.
func (h *Handler) pageData(r *http.Request) pageData {
	d := pageData{Home: h.endpoints.login, Password: len(h.passwords) > 0}
	if ss, _ := h.currentSession(r); ss != nil {
		d.SignedInAs = ss.ID
	}
	d.Action = h.endpoints.logout
	return d
}

// loginData fills the login page.
func (h *Handler) loginData(r *http.Request, next, username, errMsg string) pageData {
	d := h.pageData(r)
	d.Title = "Sign in"
	d.Action = h.endpoints.login
	d.Next = safeNext(next)
	d.Username = username
	d.Error = errMsg
	if r.URL.Query().Get("signed_out") == "1" && errMsg == "" {
		d.Info = "You have been signed out."
	}
	if msg := r.URL.Query().Get("reason"); msg != "" && errMsg == "" {
		d.Info = reasonText(msg)
	}
	if h.sso != nil { // AD FS: the sign-in button (adfs.go)
		d.SSO, d.SSOLabel = h.ssoStartURL(d.Next), h.sso.label
	}
	return d
}

// reasonText turns the reason codes adauth puts in login URLs into text.
// Only known codes are shown: the URL is attacker-controlled, so it must not
// be able to put words on the page.
func reasonText(code string) string {
	switch code {
	case "ended":
		return "Your session was ended because your account changed in the directory. Please sign in again."
	}
	return ""
}
