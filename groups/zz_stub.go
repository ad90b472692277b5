package groups

import "errors"

type Map struct {
	From string   `json:"from"`
	To   []string `json:"to"`
}
type Rules struct {
	Maps     []Map    `json:"maps,omitempty"`
	Qualify  []string `json:"qualify,omitempty"`
	Default  []string `json:"default,omitempty"`
	SameName bool     `json:"same_name,omitempty"`
}
type Mapper struct{}

var ErrNotQualified = errors.New("not qualified")

func (r Rules) Compile() (*Mapper, error)                  { return &Mapper{}, nil }
func PassThrough() *Mapper                                 { return &Mapper{} }
func (m *Mapper) Directory(dir []Group) ([]string, error) { return Names(dir), nil }
func (m *Mapper) Local(g []string) []string                { return g }
