"""The base layer: errors, logging, statistics, hashing, paths, the Hub cache and the one typed registry. Imports
nothing else of owb."""
