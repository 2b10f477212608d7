"""Job middleware, Laravel's: ``RateLimited``, ``WithoutOverlapping``, ``ThrottlesExceptions``, ``Skip``."""
