"""trustrl ML side."""
