// Command htpasswd writes one line of an htpasswd file with a bcrypt hash, the
// only hash the distribution registry's htpasswd authenticator accepts. It
// replaces apache2-utils' htpasswd for tests/registry/registry.sh.
//
// Usage:
//
//	htpasswd [-cost N] USER < PASSWORD
//
// The password is read from standard input (one line; a trailing newline is
// dropped) so it never shows in a process listing. The line "USER:HASH" is
// printed on standard output.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "htpasswd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	return runWithUsage(args, stdin, stdout, os.Stderr)
}

// runWithUsage is run with the usage text going to usage.
func runWithUsage(args []string, stdin io.Reader, stdout, usage io.Writer) error {
	flags := flag.NewFlagSet("htpasswd", flag.ContinueOnError)
	flags.SetOutput(usage)
	// The registry compares the hash on every authenticated request; a
	// throwaway test credential does not need the default cost's ~50 ms.
	cost := flags.Int("cost", bcrypt.MinCost, "bcrypt cost")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: htpasswd [-cost N] USER < PASSWORD")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return errors.New("exactly one USER argument is required")
	}
	user := flags.Arg(0)
	if user == "" || strings.ContainsAny(user, ":\r\n") {
		return fmt.Errorf("USER %q must be non-empty and contain no ':' or line break", user)
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		return fmt.Errorf("-cost %d is outside bcrypt's range %d..%d", *cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	password, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the password from standard input: %w", err)
	}
	password = strings.TrimSuffix(strings.TrimSuffix(password, "\n"), "\r")
	if password == "" {
		return errors.New("the password on standard input is empty")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), *cost)
	if err != nil {
		return fmt.Errorf("hashing the password: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s:%s\n", user, hash)
	return err
}
