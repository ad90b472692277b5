package adauth

import "time"

// SealSessionForTest seals a session for id with the given key, as a
// plain-HTTP session cookie value: the attack suite's "cookie sealed under
// another key".
func SealSessionForTest(key, id string, groups ...string) string {
	s, err := newSealer([]string{key})
	if err != nil {
		panic(err)
	}
	now := time.Now().Unix()
	ss := &session{ID: id, Backend: "local", Groups: groups, Issued: now, Seen: now, Checked: now}
	return s.seal(ss.marshal(), purposeSessionPlain)
}
