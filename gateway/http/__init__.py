"""HTTP plumbing shared by every route: problem answers, middleware, paging, integer bounds."""
