package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestWritesABcryptLineTheRegistryCanVerify(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"kubewasm"}, strings.NewReader("s3cret\n"), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	line := out.String()
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", line)
	}
	user, hash, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
	if !ok || user != "kubewasm" {
		t.Fatalf("want \"kubewasm:HASH\", got %q", line)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")); err != nil {
		t.Errorf("the hash does not verify the password (the newline must not be part of it): %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret\n")); err == nil {
		t.Error("the hash also verifies the password with its newline")
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != bcrypt.MinCost {
		t.Errorf("cost = %d (%v), want the default %d", cost, err, bcrypt.MinCost)
	}
}

func TestCostFlagAndCRLF(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-cost", "6", "u"}, strings.NewReader("pw\r\n"), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	hash := strings.TrimPrefix(strings.TrimSuffix(out.String(), "\n"), "u:")
	if cost, _ := bcrypt.Cost([]byte(hash)); cost != 6 {
		t.Errorf("cost = %d, want 6", cost)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("pw")); err != nil {
		t.Errorf("the hash does not verify the password without its CRLF: %v", err)
	}
}

func TestRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, wantErr string
		args                 []string
	}{
		{"no user", "pw", "exactly one USER", nil},
		{"two users", "pw", "exactly one USER", []string{"a", "b"}},
		{"colon in user", "pw", "must be non-empty and contain no ':'", []string{"a:b"}},
		{"empty user", "pw", "must be non-empty", []string{""}},
		{"empty password", "\n", "password on standard input is empty", []string{"u"}},
		{"no password", "", "password on standard input is empty", []string{"u"}},
		{"cost too low", "pw", "-cost 3 is outside", []string{"-cost", "3", "u"}},
		{"cost too high", "pw", "-cost 32 is outside", []string{"-cost", "32", "u"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, usage bytes.Buffer
			err := runWithUsage(tc.args, strings.NewReader(tc.stdin), &out, &usage)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %q on a failure", out.String())
			}
		})
	}
}
