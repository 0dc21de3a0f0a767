package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/trigger/stack"
)

func initCmd() *cobra.Command {
	var write, force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Detect a repository's stacks and print a pipeline file for it",
		Long: "init inspects DIR (default .) and its top-level directories for go.mod, package.json\n" +
			"and its lockfile, pom.xml, build.gradle(.kts), requirements.txt, poetry.lock,\n" +
			"pyproject.toml, Cargo.toml, Chart.yaml, Kubernetes manifests, *.tf, a Dockerfile or a\n" +
			"Makefile, and prints a pipeline that builds and tests what it found, with comments\n" +
			"that say what each file meant. --write writes it to DIR/.paved.yml instead (--force\n" +
			"replaces an existing one). Exit 2 when there is nothing to build. See docs/init.md.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageErr("%v", err)
			}
			if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
				return usageErr("%s is not a directory", dir)
			}
			d, err := stack.Detect(os.DirFS(abs))
			if errors.Is(err, stack.ErrNothingFound) {
				return usageErr("%s: %v; write the pipeline by hand: docs/pipeline.md", dir, err)
			}
			if err != nil {
				return err
			}
			opt := compileOptions()
			src := d.Pipeline(stack.Options{Name: filepath.Base(abs), Kinds: opt.Kinds})
			if _, err := pipeline.Compile(".paved.yml", src, opt); err != nil {
				return fmt.Errorf("the generated pipeline does not compile (a bug of paved init; please report it):\n%v", err)
			}
			if !write {
				_, err := cmd.OutOrStdout().Write(src)
				return err
			}
			file := filepath.Join(dir, ".paved.yml")
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(file, flags, 0o644)
			if errors.Is(err, os.ErrExist) {
				return usageErr("%s exists; pass --force to replace it, or leave out --write to print the pipeline", file)
			}
			if err != nil {
				return usageErr("%v", err)
			}
			if _, err := f.Write(src); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; check it with `paved validate %s` and try it with `paved run`\n", file, file)
			return nil
		},
	}
	cmd.Flags().BoolVar(&write, "write", false, "write DIR/.paved.yml instead of printing the pipeline")
	cmd.Flags().BoolVar(&force, "force", false, "with --write: replace an existing .paved.yml")
	return cmd
}
