"""Things outside the database: the payment provider and the mail sender."""
