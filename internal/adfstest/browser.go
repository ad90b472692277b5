package adfstest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// SignIn plays the browser's part at AD FS: it opens authURL (as the
// redirect from /adauth/adfs would), fills in the form and returns the
// callback URL AD FS redirects back to (with code and state, or an error).
func (s *Server) SignIn(authURL, username, password string) (*url.URL, error) {
	c := s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	resp, err := c.Get(authURL)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound {
		return url.Parse(resp.Header.Get("Location"))
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="username"`) {
		return nil, fmt.Errorf("authorize: %s: %s", resp.Status, body)
	}
	form := u.Query()
	form.Set("UserName", username)
	form.Set("Password", password)
	resp, err = c.PostForm(s.URL+"/adfs/oauth2/authorize/", form)
	if err != nil {
		return nil, err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("sign-in form: %s: %.200s", resp.Status, body)
	}
	return url.Parse(resp.Header.Get("Location"))
}
