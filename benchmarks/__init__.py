"""owb's benchmarks: suites that measure the harness's engines against the libraries they wrap."""
