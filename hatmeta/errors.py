"""User-facing errors: one line naming the file, the row (line number) and the column."""


class InputError(Exception):
    """A mistake in the user's input. The command line prints it on one line and exits 2."""

    def __init__(self, message, file=None, line=None, column=None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    def __str__(self):
        where = ""
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        col = f"column '{self.column}': " if self.column is not None else ""
        return f"{where}{col}{self.message}"
