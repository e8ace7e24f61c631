"""What runs on a fit: leave-one-out, cumulative and subgroup analyses, small-study tests."""
