package config

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/wscanary/wscanary/monitor/internal/files"
)

// maxCredentialBytes bounds one systemd credential: a token or a key.
const maxCredentialBytes = 64 << 10

// SystemLookup resolves ${NAME} the way the daemon does: from the
// environment, then from a systemd credential of that name
// (LoadCredential=NAME:path puts it in $CREDENTIALS_DIRECTORY), so a secret
// need not sit in the environment at all. validate, check and run all use
// it, so they agree on what is set.
func SystemLookup(name string) (string, bool) {
	return credentialLookup(os.LookupEnv, os.Getenv("CREDENTIALS_DIRECTORY"))(name)
}

func credentialLookup(env func(string) (string, bool), credDir string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := env(name); ok {
			return v, true
		}
		if credDir == "" || strings.ContainsAny(name, "/.") {
			return "", false
		}
		b, err := files.ReadRegular(filepath.Join(credDir, name), maxCredentialBytes)
		if err != nil {
			return "", false
		}
		return strings.TrimRight(string(b), "\r\n"), true
	}
}
