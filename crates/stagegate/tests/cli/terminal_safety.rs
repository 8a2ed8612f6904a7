//! Agent text on a terminal (issue 12).
