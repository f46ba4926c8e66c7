-- now: the server clock plus the offset, as text (Lua numbers would be truncated to integers).
return fmt(NOW)
