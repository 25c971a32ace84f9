/** The key UNIQUE (sale_id, user_id) compares, as one string: two purchases with the same key are one order. */
export function orderKey(order: { saleId: string; userId: string }): string {
  return `${order.saleId}\u0000${order.userId}`;
}
