"""Converting many files: which outputs the inputs map to (plan), running the tasks in one
process, several, or across torchrun ranks (run, dist), and the per-file report."""
