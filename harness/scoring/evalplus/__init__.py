"""EvalPlus scoring (HumanEval+, MBPP+): an answer's function runs on the base and extra inputs in one sandboxed
process and each output is compared there with the canonical solution's, as EvalPlus compares them. `scorer` is
the scorer, `driver` the program shipped into the sandbox, `oracles` MBPP+'s special comparisons and input fixes."""
