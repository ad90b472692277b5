package adauth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddy-adauth/adauth/localauth"
)

func init() {
	registerSubcommand(newUserCmd)
	registerSubcommand(newImportDjangoCmd)
	registerSubcommand(newKeyCmd)
}

// newUserCmd is `caddy adauth user`: editing a local users file. A running
// Caddy picks up each change within a second or two.
func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user <add|passwd|disable|enable|remove|list> ...",
		Short: "Manages the local users file",
		Long: `
Adds, changes and removes the accounts of a local users file (the file of
the Caddyfile's "local" directive). Passwords are hashed with argon2id,
in the format "caddy hash-password --algorithm argon2id" prints. Every
change replaces the file atomically; a running Caddy re-reads it within
a second or two.

Without --password-stdin the password is asked twice on the terminal,
without echo. With --password-stdin the first line of standard input is
the password (for scripts: printf '%s\n' "$PW" | caddy adauth user ...).`,
	}
	cmd.AddCommand(newUserAddCmd(), newUserPasswdCmd(),
		newUserStateCmd("disable", true), newUserStateCmd("enable", false),
		newUserRemoveCmd(), newUserListCmd())
	return cmd
}

// fileFlag adds the required --file flag.
func fileFlag(cmd *cobra.Command) *string {
	p := cmd.Flags().String("file", "", "the users file (required)")
	_ = cmd.MarkFlagRequired("file")
	return p
}

// readUsers reads the users file; with create, a missing file is an empty
// one.
func readUsers(path string, create bool) (*localauth.File, error) {
	f, err := localauth.ReadFile(path)
	if create && errors.Is(err, fs.ErrNotExist) {
		return &localauth.File{}, nil
	}
	return f, err
}

// writeUsers writes the users file. A file it creates is 0600 and owned by
// whoever runs the command: run as root, it says so, since Caddy usually
// runs as another user and could not read it. Then it prints what was done.
func writeUsers(cmd *cobra.Command, path string, f *localauth.File, done string) error {
	_, statErr := os.Stat(path)
	if err := localauth.WriteFile(path, f); err != nil {
		return err
	}
	if errors.Is(statErr, fs.ErrNotExist) && os.Geteuid() == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is new, owned by root, mode 0600: let the user Caddy runs as read it (e.g. chown caddy: %s)\n", path, path)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", path, done)
	return nil
}

func newUserAddCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add <username> --file <users.json> [--email E] [--given-name G] [--family-name F] [--group G]... [--password-stdin]",
		Short: "Adds a user (and creates the file if it is missing)",
		Args:  cobra.ExactArgs(1),
	}
	file := fileFlag(cmd)
	email := cmd.Flags().String("email", "", "email address")
	given := cmd.Flags().String("given-name", "", "given (first) name")
	family := cmd.Flags().String("family-name", "", "family (last) name")
	grps := cmd.Flags().StringArray("group", nil, "application group (repeatable)")
	stdin := cmd.Flags().Bool("password-stdin", false, "read the password from the first line of standard input")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if err := checkUsername(name); err != nil {
			return err
		}
		f, err := readUsers(*file, true)
		if err != nil {
			return err
		}
		if u := f.Find(name); u != nil {
			return fmt.Errorf("user %q already exists in %s (change its password with `caddy adauth user passwd`)", u.Username, *file)
		}
		u := localauth.User{Username: name, Password: "!", Email: *email, GivenName: *given, FamilyName: *family, Groups: *grps}
		// Everything but the password is checked before asking for it.
		if err := (&localauth.File{Users: []localauth.User{u}}).Validate(); err != nil {
			return err
		}
		if u.Password, err = newPasswordHash(cmd, *stdin); err != nil {
			return err
		}
		if err := f.Add(u); err != nil {
			return err
		}
		return writeUsers(cmd, *file, f, fmt.Sprintf("added user %q", name))
	}
	return cmd
}

func newUserPasswdCmd() *cobra.Command {
	var stdin *bool
	cmd := newUserChangeCmd("passwd", "[--password-stdin]", "Sets a user's password",
		func(cmd *cobra.Command, f *localauth.File, u *localauth.User) (string, bool, error) {
			hash, err := newPasswordHash(cmd, *stdin)
			if err != nil {
				return "", false, err
			}
			u.Password = hash
			return fmt.Sprintf("changed the password of %q", u.Username), true, nil
		})
	stdin = cmd.Flags().Bool("password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func newUserStateCmd(verb string, disabled bool) *cobra.Command {
	short := map[bool]string{true: "Disables a user: the password no longer signs in", false: "Enables a disabled user"}[disabled]
	return newUserChangeCmd(verb, "", short,
		func(cmd *cobra.Command, f *localauth.File, u *localauth.User) (string, bool, error) {
			if u.Disabled == disabled {
				return fmt.Sprintf("user %q is already %sd", u.Username, verb), false, nil
			}
			u.Disabled = disabled
			return fmt.Sprintf("%sd user %q", verb, u.Username), true, nil
		})
}

func newUserRemoveCmd() *cobra.Command {
	return newUserChangeCmd("remove", "", "Removes a user",
		func(cmd *cobra.Command, f *localauth.File, u *localauth.User) (string, bool, error) {
			name := u.Username
			return fmt.Sprintf("removed user %q", name), true, f.Remove(name)
		})
}

// newUserChangeCmd is a command that changes one user of the file. change
// edits f or u and says what it did; the file is written back when it
// changed anything.
func newUserChangeCmd(verb, flags, short string, change func(*cobra.Command, *localauth.File, *localauth.User) (done string, changed bool, err error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   strings.TrimSpace(verb + " <username> --file <users.json> " + flags),
		Short: short,
		Args:  cobra.ExactArgs(1),
	}
	file := fileFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, u, err := findUser(*file, args[0])
		if err != nil {
			return err
		}
		done, changed, err := change(cmd, f, u)
		switch {
		case err != nil:
			return err
		case !changed:
			fmt.Fprintln(cmd.OutOrStdout(), done)
			return nil
		}
		return writeUsers(cmd, *file, f, done)
	}
	return cmd
}

func newUserListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list --file <users.json>",
		Short: "Lists the users (never their hashes)",
		Args:  cobra.NoArgs,
	}
	file := fileFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := readUsers(*file, false)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tNAME\tEMAIL\tGROUPS\tDISABLED")
		for _, u := range f.Users {
			disabled := "no"
			if u.Disabled {
				disabled = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username,
				orDash(strings.TrimSpace(u.GivenName+" "+u.FamilyName)), orDash(u.Email),
				orDash(strings.Join(u.Groups, ",")), disabled)
		}
		return tw.Flush()
	}
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// findUser reads the file and finds a user in it.
func findUser(path, name string) (*localauth.File, *localauth.User, error) {
	f, err := readUsers(path, false)
	if err != nil {
		return nil, nil, err
	}
	u := f.Find(name)
	if u == nil {
		return nil, nil, fmt.Errorf("no user %q in %s", name, path)
	}
	return f, u, nil
}

// newPasswordHash reads a new password (the first line of stdin, or twice
// from the terminal without echo) and hashes it.
func newPasswordHash(cmd *cobra.Command, fromStdin bool) (string, error) {
	var pw string
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), maxPasswordBytes+3)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		if !strings.HasSuffix(line, "\n") && len(line) > maxPasswordBytes {
			return "", fmt.Errorf("password longer than %d bytes", maxPasswordBytes)
		}
		pw = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	} else {
		in, ok := cmd.InOrStdin().(*os.File)
		if !ok || !term.IsTerminal(int(in.Fd())) {
			return "", errors.New("standard input is not a terminal: pass --password-stdin to read the password from it")
		}
		first, err := promptPassword(cmd, in, "New password: ")
		if err != nil {
			return "", err
		}
		again, err := promptPassword(cmd, in, "Again: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errors.New("the passwords do not match")
		}
		pw = first
	}
	switch {
	case pw == "":
		return "", errors.New("empty password")
	case len(pw) > maxPasswordBytes:
		return "", fmt.Errorf("password longer than %d bytes (the sign-in form takes no more)", maxPasswordBytes)
	case !utf8.ValidString(pw):
		return "", errors.New("password is not valid UTF-8")
	case strings.IndexByte(pw, 0) >= 0:
		return "", errors.New("password contains a NUL byte")
	}
	return localauth.HashPassword(pw)
}

func promptPassword(cmd *cobra.Command, in *os.File, prompt string) (string, error) {
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	b, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return string(b), nil
}

// newImportDjangoCmd is `caddy adauth import-django`: QATrack+'s (any
// Django site's) users into a users file, with their password hashes.
func newImportDjangoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import-django <dumpdata.json> --file <users.json> [--replace]",
		Short: "Imports Django (QATrack+) users and groups into a users file",
		Long: `
Reads the output of

	python manage.py dumpdata auth.user auth.group --indent 2 > dumpdata.json

(in the QATrack+ directory, with its virtualenv) and merges its users into
the users file, creating it if it is missing. Usernames are lower-cased;
names, email and group names are copied; inactive users are disabled;
password hashes (pbkdf2_sha256) are kept, so everyone signs in with the
password they had. Users without a usable password (those the AD backend
created) are imported but cannot sign in with a password.

A user already in the file is an error unless --replace is given; then
the imported account replaces it. Nothing is written when there is an
error.`,
		Args: cobra.ExactArgs(1),
	}
	file := fileFlag(cmd)
	replace := cmd.Flags().Bool("replace", false, "replace users that are already in the file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		dump, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		users, err := localauth.ImportDjango(dump)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		f, err := readUsers(*file, true)
		if err != nil {
			return err
		}
		var conflicts []string
		var replaced, disabled, unusable int
		for _, u := range users {
			if old := f.Find(u.Username); old != nil {
				if !*replace {
					conflicts = append(conflicts, old.Username)
					continue
				}
				*old = u
				replaced++
			} else if err := f.Add(u); err != nil {
				return err
			}
			if u.Disabled {
				disabled++
			}
			if strings.HasPrefix(u.Password, "!") {
				unusable++
			}
		}
		if len(conflicts) > 0 {
			return fmt.Errorf("%d users are already in %s: %s (pass --replace to overwrite them); nothing written",
				len(conflicts), *file, strings.Join(conflicts, ", "))
		}
		return writeUsers(cmd, *file, f, fmt.Sprintf("imported %d users (%d replaced, %d disabled, %d without a usable password)",
			len(users), replaced, disabled, unusable))
	}
	return cmd
}

// newKeyCmd is `caddy adauth key`: a new session key for `session_key`.
func newKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "key",
		Short: "Prints a new random session key",
		Long: `
Prints a new random 32-byte key (base64url) for the session_key
sub-directive, e.g. to put in ADAUTH_KEY. Several keys may be given to
rotate: the first seals new sessions, all of them open existing ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), newKey())
			return err
		},
	}
}
