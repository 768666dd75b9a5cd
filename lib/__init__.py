"""Thin library behind the book: reusable modules (nn, models, losses) and infrastructure (data, train, repro, measure, plot)."""
