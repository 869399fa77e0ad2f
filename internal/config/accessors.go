package config

import "fmt"

// Argv is the command line an instance runs: the interpreter and its
// arguments first, when there is one.
func (a *App) Argv() []string {
	if a.Interpreter == "" {
		return a.Command
	}
	argv := append([]string{a.Interpreter}, a.InterpreterArgs...)
	argv = append(argv, a.NodeArgs...)
	return append(argv, a.Command...)
}

// SelectEnv merges each app's env_NAME block over its env, for
// `herd up --env NAME`. It is an error when no app has such a block.
func (c *Config) SelectEnv(name string) error {
	found := false
	for _, a := range c.Apps {
		set, ok := a.EnvSets[name]
		if !ok {
			continue
		}
		found = true
		if a.Env == nil {
			a.Env = map[string]string{}
		}
		for k, v := range set {
			a.Env[k] = v
		}
	}
	if !found {
		return Errors{{File: c.File, Msg: fmt.Sprintf("--env %s: no app has an env_%s: block; add one or drop --env", name, name)}}
	}
	return nil
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// upstream returns the upstream named name, or nil.
func (c *Config) upstream(name string) *Upstream {
	for _, u := range c.Upstreams {
		if u.Name == name {
			return u
		}
	}
	return nil
}
