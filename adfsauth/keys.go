package adfsauth

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

type jsonWebKey = jose.JSONWebKey

// keySet is the provider's signing keys, an oidc.KeySet. go-oidc's
// RemoteKeySet refetches the JWKS on every token with an unknown key id,
// without limit, so a stream of forged tokens would become a stream of
// requests to AD FS; this one refetches at most once per interval, merges
// concurrent fetches, and reports a failed fetch as ErrUnavailable.
type keySet struct {
	fetch    func(context.Context) ([]jsonWebKey, error)
	algs     []jose.SignatureAlgorithm
	interval time.Duration

	fetchMu sync.Mutex // one fetch at a time; waiters reuse its result
	mu      sync.RWMutex
	keys    []jsonWebKey
	loaded  bool
	fetched time.Time // last successful fetch of any kind
	last    time.Time // last refetch caused by an unknown key id
}

// maxKeyAge is how long fetched keys are used before they are fetched again
// on the next token, so a key the provider has withdrawn stops verifying
// within a day even if no unknown key id ever forces a refetch. When the
// provider cannot be reached then, the old keys stay in use.
const maxKeyAge = 24 * time.Hour

func newKeySet(fetch func(context.Context) ([]jsonWebKey, error), algs []string, interval time.Duration) *keySet {
	k := &keySet{fetch: fetch, interval: interval}
	for _, a := range algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	return k
}

func (k *keySet) set(keys []jsonWebKey) {
	k.mu.Lock()
	k.keys, k.loaded, k.fetched = keys, true, time.Now()
	k.mu.Unlock()
}

func (k *keySet) cached() ([]jsonWebKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.loaded
}

// get returns the keys, loading them on first use.
func (k *keySet) get(ctx context.Context) ([]jsonWebKey, error) {
	keys, ok := k.cached()
	if !ok {
		return k.refresh(ctx, false)
	}
	k.mu.RLock()
	stale := time.Since(k.fetched) > maxKeyAge
	k.mu.RUnlock()
	if stale {
		if fresh, err := k.refresh(ctx, false); err == nil {
			return fresh, nil
		}
	}
	return keys, nil
}

// refresh fetches the keys. unknownKid marks a refetch that a token with an
// unknown key id asked for: those are rate-limited.
func (k *keySet) refresh(ctx context.Context, unknownKid bool) ([]jsonWebKey, error) {
	before, loadedBefore := k.cached()
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	keys, loaded := k.cached()
	if loaded && (!loadedBefore || !sameKeys(before, keys)) {
		return keys, nil // another goroutine fetched while this one waited
	}
	if loaded && unknownKid {
		k.mu.RLock()
		recent := !k.last.IsZero() && time.Since(k.last) < k.interval
		k.mu.RUnlock()
		if recent {
			return keys, nil
		}
	}
	fetched, err := k.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: signing keys: %w", ErrUnavailable, err)
	}
	k.mu.Lock()
	k.keys, k.loaded, k.fetched = fetched, true, time.Now()
	if unknownKid {
		k.last = time.Now()
	}
	k.mu.Unlock()
	return fetched, nil
}

func sameKeys(a, b []jsonWebKey) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs) // a JWT: compact serialization only
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	x5t, _ := jws.Signatures[0].Header.ExtraHeaders["x5t"].(string)
	keys, err := k.get(ctx)
	if err != nil {
		holdErr(ctx, err)
		return nil, err
	}
	if p, found, err := verifyWith(jws, keys, kid, x5t); found {
		return p, err
	}
	// An unknown key id: the provider may have rolled its key over.
	if keys, err = k.refresh(ctx, true); err != nil {
		holdErr(ctx, err)
		return nil, err
	}
	if p, found, err := verifyWith(jws, keys, kid, x5t); found {
		return p, err
	}
	return nil, fmt.Errorf("no signing key with id %q (x5t %q) among the provider's keys", kid, x5t)
}

func holdErr(ctx context.Context, err error) {
	if h, ok := ctx.Value(errHolderKey{}).(*error); ok {
		*h = err
	}
}

// verifyWith tries the keys the token's header names (all keys when it
// names none). found reports that a matching key was there.
func verifyWith(jws *jose.JSONWebSignature, keys []jsonWebKey, kid, x5t string) (payload []byte, found bool, err error) {
	err = errors.New("no key")
	for i := range keys {
		key := &keys[i]
		if kid != "" && key.KeyID != "" && key.KeyID != kid {
			continue
		}
		if kid == "" && x5t != "" && len(key.CertificateThumbprintSHA1) > 0 &&
			base64.RawURLEncoding.EncodeToString(key.CertificateThumbprintSHA1) != strings.TrimRight(x5t, "=") {
			continue
		}
		found = true
		if payload, err = jws.Verify(key); err == nil {
			return payload, true, nil
		}
	}
	return nil, found, err
}

func get(ctx context.Context, client *http.Client, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, resp.StatusCode, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return body, resp.StatusCode, nil
}

func fetchJWKS(ctx context.Context, client *http.Client, u string) ([]jsonWebKey, error) {
	body, _, err := get(ctx, client, u)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	var keys []jsonWebKey
	for _, r := range raw.Keys {
		var k jsonWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue // a key of a type we do not use (or malformed): skip it, keep the rest
		}
		if k.Use != "" && k.Use != "sig" || !k.Valid() || !k.IsPublic() {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no usable signing keys", u)
	}
	return keys, nil
}

// metadata is what adauth reads from AD FS federation metadata.
type metadata struct {
	entityID string
	keys     []jsonWebKey
}

// fetchMetadata reads FederationMetadata.xml: the entityID and every
// signing certificate in a KeyDescriptor (use="signing" or no use).
func fetchMetadata(ctx context.Context, client *http.Client, u string) (*metadata, error) {
	body, _, err := get(ctx, client, u)
	if err != nil {
		return nil, fmt.Errorf("federation metadata: %w", err)
	}
	md, err := parseMetadata(body)
	if err != nil {
		return nil, fmt.Errorf("federation metadata %s: %w", u, err)
	}
	return md, nil
}

func parseMetadata(body []byte) (*metadata, error) {
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	md := &metadata{}
	seen := map[string]bool{}
	var inSigningKey, inCert bool
	var depth, keyDepth int
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch t.Name.Local {
			case "EntityDescriptor":
				for _, a := range t.Attr {
					if a.Name.Local == "entityID" && md.entityID == "" {
						md.entityID = a.Value
					}
				}
			case "KeyDescriptor":
				use := ""
				for _, a := range t.Attr {
					if a.Name.Local == "use" {
						use = a.Value
					}
				}
				if use == "" || use == "signing" {
					inSigningKey, keyDepth = true, depth
				}
			case "X509Certificate":
				if inSigningKey {
					inCert = true
					text.Reset()
				}
			}
		case xml.CharData:
			if inCert {
				text.Write(t)
			}
		case xml.EndElement:
			switch {
			case t.Name.Local == "X509Certificate" && inCert:
				inCert = false
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text.String()), ""))
				if err != nil {
					return nil, fmt.Errorf("signing certificate: %w", err)
				}
				if seen[string(der)] {
					break
				}
				seen[string(der)] = true
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("signing certificate: %w", err)
				}
				sum := sha1.Sum(der)
				md.keys = append(md.keys, jsonWebKey{
					Key:                       cert.PublicKey,
					KeyID:                     base64.RawURLEncoding.EncodeToString(sum[:]),
					Certificates:              []*x509.Certificate{cert},
					CertificateThumbprintSHA1: sum[:],
					Use:                       "sig",
				})
			case t.Name.Local == "KeyDescriptor" && depth == keyDepth:
				inSigningKey = false
			}
			depth--
		}
	}
	if md.entityID == "" {
		return nil, errors.New("no entityID")
	}
	if len(md.keys) == 0 {
		return nil, errors.New("no signing certificate")
	}
	return md, nil
}

// Interface guards
var _ oidc.KeySet = (*keySet)(nil)
